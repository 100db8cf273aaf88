# mailmoat as a container, for example as a sidecar in front of an SMTP server.
#   docker build -t mailmoat .
#   docker run -d --name mailmoat -p 25:2525 \
#     -v /etc/mailmoat/policy.yaml:/etc/mailmoat/policy.yaml:ro \
#     -v mailmoat-quarantine:/var/lib/mailmoat/quarantine mailmoat
# The policy's listener must listen on 0.0.0.0:2525 (an unprivileged port: the
# container runs as a non-root user) and name the real server as upstream.
# Build with --format docker (buildah, podman): the OCI format has no HEALTHCHECK and drops it.
# Without a registry, BASE can be a local equivalent of node:24-slim (scripts/container-base.sh):
#   buildah build --format docker --build-arg BASE=$(bash scripts/container-base.sh) -t mailmoat .
ARG BASE=node:24-slim

FROM ${BASE} AS build
# node-gyp builds the SO_ORIGINAL_DST addon (upstream: original-destination) against the image's Node.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ >/dev/null
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# npm ci's postinstall (scripts/postinstall.mjs) applies patches/ (mailsplit's client reading and
# faster line search, mailauth's quiet verifier; see the README) and builds the addon.
COPY scripts/postinstall.mjs ./scripts/postinstall.mjs
COPY patches ./patches
COPY native ./native
COPY src ./src
COPY bench ./bench
# Behind a TLS-inspecting proxy, pass its CA bundle as a build secret (never stored in the image):
#   --secret id=build_ca,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=build_ca \
    if [ -s /run/secrets/build_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build_ca; fi \
 && npm ci --no-audit --no-fund && test -f native/build/Release/original_dst.node && npm prune --omit=dev \
 && find dist -name '*.map' -delete && npm cache clean --force

# The running image: only dist/src, the production node_modules, the addon and the policies.
FROM ${BASE}
ENV NODE_ENV=production
# clamd for antivirus.clamd: managed (mailmoat runs and supervises it), and freshclam for its
# signatures (deploy/docker-compose.sidecar.yml runs it as a second service on a shared volume);
# 7-Zip, bsdtar, bzip2 and xz open the containers the inspector looks into (7z, cab, RAR, ISO...).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends clamav-daemon clamav-freshclam 7zip libarchive-tools bzip2 xz-utils >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o node -g node -m 0755 /var/lib/clamav /etc/mailmoat \
 && printf 'DatabaseDirectory /var/lib/clamav\nDatabaseMirror database.clamav.net\nForeground yes\nLogTime yes\n' > /etc/mailmoat/freshclam.conf
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/native/build/Release/original_dst.node ./native/build/Release/original_dst.node
COPY package.json ./
COPY policies ./policies
COPY policies/default.yaml /etc/mailmoat/policy.yaml
RUN ln -s /app/dist/src/bin.js /usr/local/bin/mailmoat && chmod +x /app/dist/src/bin.js \
 && install -d -o node -g node -m 0700 /var/lib/mailmoat/quarantine
# The quarantine (quarantine.dir) and the signatures should outlive the container: mount volumes there.
VOLUME /var/lib/mailmoat/quarantine /var/lib/clamav
USER node
EXPOSE 2525
# Ready when the running proxy's /healthz (admin.listen of the policy) says so: listeners up, a clamd
# answering, the spool writable. While the managed clamd waits for its first signatures nothing
# answers there: not ready. The probe asks; it never starts a clamd of its own.
HEALTHCHECK --interval=30s --timeout=15s --start-period=120s \
  CMD ["mailmoat", "health", "--policy", "/etc/mailmoat/policy.yaml"]
ENTRYPOINT ["mailmoat"]
CMD ["start", "--policy", "/etc/mailmoat/policy.yaml"]
