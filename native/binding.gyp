# Builds native/build/Release/original_dst.node: the SO_ORIGINAL_DST reader used by
# src/accept/original-destination.ts. Node-API only (NAPI_VERSION 8), so one build loads
# under every Node from 20 on. Build with `npm run build:addon` (never downloads headers).
{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["original_dst.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
