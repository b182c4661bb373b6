# A static, non-root signet-apiserver image:
#   docker build -t ghcr.io/signet-dev/signet:v0.1.0 .
# artifacts/deploy and the chart run it with args only (the ENTRYPOINT is the
# binary), as 65532:65532 with a read-only root filesystem. signet writes
# nothing at run time (its serving keys live in memory), so the image needs no
# writable path.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/signet-apiserver ./cmd/signet-apiserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/signet-apiserver /signet-apiserver
USER 65532:65532
ENTRYPOINT ["/signet-apiserver"]
