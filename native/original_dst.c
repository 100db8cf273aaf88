/*
 * original_dst.c: the one thing Node cannot do for a transparent proxy on Linux.
 *
 * When iptables/nftables NAT (e.g. `-j REDIRECT`) sends a connection to the proxy,
 * the address the client was really dialling is kept by conntrack and read with
 *   getsockopt(fd, SOL_IP,   SO_ORIGINAL_DST,      struct sockaddr_in *)   IPv4
 *   getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, struct sockaddr_in6 *)  IPv6
 * (both option numbers are 80). Node has no binding for it, so this Node-API
 * (NAPI_VERSION 8, ABI-stable) addon exports exactly one function:
 *
 *   originalDestination(fd: number): { address: string, port: number, family: 4 | 6 }
 *
 * The family is picked from getsockname(fd): an AF_INET socket, or an AF_INET6 socket
 * whose local address is IPv4-mapped (::ffff:a.b.c.d, a dual-stack listener accepting
 * IPv4), uses SOL_IP; any other AF_INET6 socket uses SOL_IPV6.
 *
 * On failure it throws an Error whose `code` is the errno name (ENOENT when conntrack
 * has no entry: not NATed, or no nat table in this network namespace; ENOPROTOOPT;
 * EBADF; ENOTSOCK ...) and whose `errno` is the number. Interpreting the answer
 * (not redirected, loop) is left to the TypeScript side.
 */
#define _GNU_SOURCE /* strerrorname_np (glibc >= 2.32) */
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>          /* SO_ORIGINAL_DST */
#include <linux/netfilter_ipv6/ip6_tables.h> /* IP6T_SO_ORIGINAL_DST */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Throws `Error(message)` with .code = errno name and .errno = number. */
static void throw_errno(napi_env env, int err, const char *what) {
  const char *code = strerrorname_np(err); /* glibc >= 2.32: "ENOENT", ... */
  char code_buf[32];
  if (code == NULL) {
    snprintf(code_buf, sizeof code_buf, "E%d", err);
    code = code_buf;
  }
  char message[256];
  snprintf(message, sizeof message, "%s failed with %s: %s", what, code, strerror(err));

  napi_value js_code, js_message, error, js_errno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message) != napi_ok ||
      napi_create_error(env, js_code, js_message, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  if (napi_create_int32(env, err, &js_errno) == napi_ok) {
    napi_set_named_property(env, error, "errno", js_errno);
  }
  napi_throw(env, error);
}

/* Builds { address, port, family } (port given in network byte order). */
static napi_value make_result(napi_env env, const char *address, uint16_t port_be, int family) {
  napi_value result, js_address, js_port, js_family;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &js_address) != napi_ok ||
      napi_create_uint32(env, ntohs(port_be), &js_port) != napi_ok ||
      napi_create_uint32(env, (uint32_t)family, &js_family) != napi_ok ||
      napi_set_named_property(env, result, "address", js_address) != napi_ok ||
      napi_set_named_property(env, result, "port", js_port) != napi_ok ||
      napi_set_named_property(env, result, "family", js_family) != napi_ok) {
    return NULL; /* a pending JS exception says why */
  }
  return result;
}

static napi_value OriginalDestination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "originalDestination(fd): fd must be a non-negative integer");
    return NULL;
  }

  /* Which family is this socket? */
  struct sockaddr_storage local;
  socklen_t local_len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) {
    throw_errno(env, errno, "getsockname");
    return NULL;
  }
  int use_ipv4 = local.ss_family == AF_INET ||
                 (local.ss_family == AF_INET6 &&
                  IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr));

  char text[INET6_ADDRSTRLEN];
  if (use_ipv4) {
    struct sockaddr_in dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
      throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
      return NULL;
    }
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    return make_result(env, text, dst.sin_port, 4);
  }
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    socklen_t len = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0) {
      throw_errno(env, errno, "getsockopt(IP6T_SO_ORIGINAL_DST)");
      return NULL;
    }
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    return make_result(env, text, dst.sin6_port, 6);
  }
  throw_errno(env, EAFNOSUPPORT, "originalDestination (socket is neither IPv4 nor IPv6)");
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, OriginalDestination, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "originalDestination", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
