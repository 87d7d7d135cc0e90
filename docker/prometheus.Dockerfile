# Prometheus from Debian's package on the local Debian image: for a mesh with no registry reachable.
ARG ROOTFS_IMAGE=bentomesh/debian:bookworm
FROM ${ROOTFS_IMAGE}
# the monitor (uid 10001) writes its targets into the volume mounted at /etc/prometheus/bentomesh:
# whichever container mounts it first gives it that directory's owner, so both images agree
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus /etc/prometheus/bentomesh && chown nobody /prometheus \
 && chown 10001 /etc/prometheus/bentomesh
USER 65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--web.listen-address=:9090"]
