# syntax=docker/dockerfile:1
# tailhorizon's slim coredns in a distroless image. Build and run:
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t tailhorizon .
#   docker run -v /run/tailscale:/run/tailscale \
#       -v $PWD/docs/corefiles/container.Corefile:/etc/coredns/Corefile:ro \
#       -p 53:53/udp -p 53:53/tcp tailhorizon
#
# See docs/recipes.md for the tailscaled socket and the embedded node.
# test/dockerfile_test.go checks this file: keep the Go version in step
# with go.mod.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/coredns ./cmd/coredns
# The embedded node's state directory, owned by the user the image runs as.
RUN mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/coredns /coredns
COPY --from=build --chown=65532:65532 /out/state /var/lib/tailhorizon
# Mount the Corefile here.
WORKDIR /etc/coredns
USER 65532:65532
EXPOSE 53/udp 53/tcp
ENTRYPOINT ["/coredns"]
CMD ["-conf", "/etc/coredns/Corefile"]
