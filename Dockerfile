# chartproof's image for those who build with docker: the same image `make image` builds without a Docker engine
# (hack/image; hack/internal/image.TestDockerfileEquivalent keeps the two in step). Build the static binaries first, then:
#
#   go run ./hack/image --platforms linux/amd64,linux/arm64 --binaries bin   # bin/linux_<arch>/chartproof
#   docker buildx build --platform linux/amd64,linux/arm64 -t chartproof .
#
# No base image: the binary is static and carries Mozilla's root certificates for where the system has none, so
# there is no shell, no package manager and no base to pin or patch.
FROM scratch
ARG TARGETARCH
COPY hack/image/rootfs/ /
COPY bin/linux_${TARGETARCH}/chartproof /chartproof
USER 65532:65532
ENTRYPOINT ["/chartproof"]
