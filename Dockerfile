# chattap: a static binary in a minimal, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/chattap ./cmd/chattap \
 && mkdir -p /out/data

# scratch holds nothing but what is copied in: the binary, the CA roots it
# needs to reach Segment over HTTPS, and an empty store owned by the user.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/chattap /chattap
COPY --from=build --chown=65532:65532 /out/data /data
# A container is reached from outside, so it listens on every interface:
# serve then refuses to start until every route that records has its token
# (the message names the variables), unless CHATTAP_ALLOW_UNAUTHENTICATED=true.
ENV CHATTAP_DATA_DIR=/data CHATTAP_LISTEN_ADDR=:8080
USER 65532:65532
EXPOSE 8080
VOLUME ["/data"]
# The binary is its own probe (scratch has no shell or curl): GET /healthz
# on CHATTAP_LISTEN_ADDR, asked on loopback; exit 0 on 200, 1 otherwise.
# /healthz, not /readyz: a broker outage does not stop the taps proxying,
# and restarting chattap would not bring the broker back.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/chattap", "health", "-timeout", "4s"]
ENTRYPOINT ["/chattap"]
CMD ["serve"]
