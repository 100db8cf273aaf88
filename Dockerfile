# mailmoat as a container, for example as a sidecar in front of an SMTP server.
#   docker build -t mailmoat .
#   docker run -d --name mailmoat -p 25:2525 \
#     -v /etc/mailmoat/policy.yaml:/etc/mailmoat/policy.yaml:ro \
#     -v mailmoat-quarantine:/var/lib/mailmoat/quarantine mailmoat
# The policy's listener must listen on 0.0.0.0:2525 (an unprivileged port: the
# container runs as a non-root user) and name the real server as upstream.

FROM node:24-slim AS build
# node-gyp builds the SO_ORIGINAL_DST addon (upstream: original-destination) against the image's Node.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 make g++ >/dev/null
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# patch-package applies patches/ at npm ci (a faster line search in mailsplit, see the README).
COPY patches ./patches
COPY native ./native
COPY src ./src
COPY bench ./bench
RUN npm ci --no-audit --no-fund && test -f native/build/Release/original_dst.node && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
# clamd for antivirus.clamd: managed (mailmoat runs and supervises it), and freshclam for its
# signatures (deploy/docker-compose.sidecar.yml runs it as a second service on a shared volume).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends clamav-daemon clamav-freshclam >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o node -g node -m 0755 /var/lib/clamav /etc/mailmoat \
 && printf 'DatabaseDirectory /var/lib/clamav\nDatabaseMirror database.clamav.net\nForeground yes\nLogTime yes\n' > /etc/mailmoat/freshclam.conf
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build/Release/original_dst.node ./native/build/Release/original_dst.node
COPY package.json ./
COPY policies ./policies
COPY policies/default.yaml /etc/mailmoat/policy.yaml
RUN ln -s /app/dist/src/cli.js /usr/local/bin/mailmoat && chmod +x /app/dist/src/cli.js \
 && install -d -o node -g node -m 0700 /var/lib/mailmoat/quarantine
# The quarantine (quarantine.dir) and the signatures should outlive the container: mount volumes there.
VOLUME /var/lib/mailmoat/quarantine /var/lib/clamav
USER node
EXPOSE 2525
HEALTHCHECK --interval=30s --timeout=10s CMD ["mailmoat", "check", "--policy", "/etc/mailmoat/policy.yaml"]
ENTRYPOINT ["mailmoat"]
CMD ["start", "--policy", "/etc/mailmoat/policy.yaml"]
