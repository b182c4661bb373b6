# A static, non-root signet-apiserver image. The Deployment runs it as
# 65532 with a read-only root filesystem; nothing is written at run time
# (serving keys live in memory), so the image needs no writable path.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/signet-apiserver ./cmd/signet-apiserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/signet-apiserver /signet-apiserver
USER 65532:65532
ENTRYPOINT ["/signet-apiserver"]
