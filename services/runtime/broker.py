"""The FastStream Kafka broker of a service, configured from settings."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry

from bentomesh_contracts.kafka import KafkaSettings


def security_of(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream security object for the configured protocol (TLS and/or SASL)."""
    context = settings.ssl_context()
    use_ssl = context is not None
    if settings.security_protocol.startswith("SASL"):
        user = settings.sasl_username or ""
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        cls = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }[settings.sasl_mechanism]
        return cls(user, password, ssl_context=context, use_ssl=use_ssl)
    if use_ssl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def create_broker(
    settings: KafkaSettings, *, service: str, registry: CollectorRegistry | None = None
) -> KafkaBroker:
    """A broker with acks=all and, when a registry is given, FastStream's Prometheus metrics."""
    middlewares = []
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"bentomesh-{service}",
        acks="all",
        security=security_of(settings),
        middlewares=middlewares,
        allow_auto_create_topics=False,
        description=f"BentoMesh {service}",
    )
