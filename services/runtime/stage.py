"""A stage: consume one event type, run a handler, publish the next event; never crash on input.

Outcomes of one consumed record:

- the handler returns data: the follow-up event is published to its topic, then the offset is
  committed (publishers run inside the consume scope, before FastStream acknowledges);
- the record is not a valid event of the expected type: its original bytes go to the dead-letter
  topic with the reason, and the offset is committed;
- the handler raises :class:`StageError`: one ``StageFailed`` event names the cause, and the offset
  is committed; any other exception is reported the same way with its type;
- publishing any of these fails (broker down): the offset is not committed and the record is
  delivered again, so nothing is lost. Handlers are idempotent to make redelivery safe.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Generic, TypeVar

from faststream import AckPolicy
from faststream._internal.middlewares import BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaResponse, KafkaRouter

from bentomesh_contracts import topics
from bentomesh_contracts.codec import CONTENT_TYPE, decode_as, encode, partition_key
from bentomesh_contracts.envelope import CloudEvent, follow_up
from bentomesh_contracts.errors import EventDecodeError
from bentomesh_contracts.events import EventData, Stage, StageFailed
from bentomesh_contracts.pipeline import stage as pipeline_stage
from services.errors import StageError, Unauthorized
from services.runtime.dead_letter import dead_letter
from services.runtime.metrics import StageMetrics
from services.runtime.retry import RetryPolicy, with_retries
from services.runtime.settings import RuntimeSettings
from services.runtime.trust import Trust

InT = TypeVar("InT", bound=EventData)
OutT = TypeVar("OutT", bound=EventData)

logger = logging.getLogger("bentomesh.stage")

_HEADERS = {"content-type": CONTENT_TYPE}


@dataclass(frozen=True)
class StageSpec(Generic[InT, OutT]):
    """What a stage consumes and produces, and the function that does the work."""

    stage: Stage
    consumes: type[InT]
    produces: type[OutT]
    handler: Callable[[CloudEvent[InT]], Awaitable[OutT]]
    # Events handled at once. Above 1, FastStream runs that many consumers in the group, each
    # over its own partitions: one model's events (one key, one partition) stay in order.
    concurrency: int = 1
    # The longest one handler call may take (a build's timeout): the consumer's poll interval
    # covers it with every retry, so a long build never triggers a rebalance that hands the
    # same event to a second consumer while the first is still working on it.
    longest_s: float = 0.0

    @property
    def source(self) -> str:
        return f"bentomesh/{self.stage}"

    @classmethod
    def of(
        cls,
        name: Stage,
        handler: Callable[[CloudEvent[Any]], Awaitable[Any]],
        *,
        concurrency: int = 1,
        longest_s: float = 0.0,
    ) -> StageSpec[Any, Any]:
        """The spec of pipeline stage ``name``: what it consumes and produces comes from
        :data:`~bentomesh_contracts.pipeline.PIPELINE`, the one place that says so."""
        entry = pipeline_stage(name)
        return StageSpec[Any, Any](
            name, entry.consumes, entry.produces, handler, concurrency, longest_s
        )


async def json_body(message: Any) -> Any:
    """Decode the record value as JSON whatever its content-type header says.

    Structured CloudEvents carry ``application/cloudevents+json``, which FastStream would pass
    on as raw bytes. A failure here reaches the outcome middleware and dead-letters the record.
    """
    return json.loads(message.body)


def _verifying_decoder(trust: Trust) -> Callable[[Any], Awaitable[Any]]:
    """``json_body`` once ``trust`` accepted the raw record, before anything else reads it; a
    refusal (:class:`Unauthorized`) reaches the outcome middleware."""

    async def decode(message: Any) -> Any:
        body = json.loads(message.body)
        trust.check(message.body)
        return body

    return decode


def respond(event: CloudEvent[Any], trust: Trust) -> KafkaResponse:
    """A record for ``event``, signed: structured-mode JSON, keyed by model name."""
    event = trust.sign(event)
    return KafkaResponse(encode(event), key=partition_key(event), headers=dict(_HEADERS))


async def publish_event(broker: KafkaBroker, event: CloudEvent[Any], trust: Trust) -> None:
    """Sign ``event`` and publish it to its topic."""
    event = trust.sign(event)
    await broker.publish(
        encode(event),
        type(event.data).TOPIC,
        key=partition_key(event),
        headers=dict(_HEADERS),
    )


def stage_failed(
    spec: StageSpec[Any, Any], cause: CloudEvent[Any], exc: BaseException
) -> CloudEvent[StageFailed]:
    """The ``StageFailed`` event reporting ``exc`` while processing ``cause``."""
    if isinstance(exc, StageError):
        reason, error_type = exc.reason, exc.error_type
        retryable, details = exc.retryable, exc.details
    else:
        reason, error_type = f"unexpected error: {exc}", type(exc).__name__
        retryable, details = False, None
    data = StageFailed(
        stage=spec.stage,
        model_name=getattr(cause.data, "model_name", None),
        model_version=getattr(cause.data, "model_version", None),
        reason=reason,
        error_type=error_type,
        failed_event_id=cause.id,
        failed_event_type=cause.type,
        retryable=retryable,
        details=details,
    )
    return follow_up(cause, data, source=spec.source)


class _OutcomeMiddleware(BaseMiddleware):
    """Routes failures of one record to the dead-letter topic or to ``StageFailed``."""

    def __init__(
        self,
        msg: Any,
        /,
        *,
        context: Any,
        spec: StageSpec[Any, Any],
        broker_ref: Callable[[], KafkaBroker],
        metrics: StageMetrics | None,
        trust: Trust,
    ) -> None:
        super().__init__(msg, context=context)
        self.spec = spec
        self.trust = trust
        self.broker_ref = broker_ref
        self.metrics = metrics
        self.started = time.perf_counter()

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.events.labels(self.spec.stage, outcome).inc()
            self.metrics.seconds.labels(self.spec.stage).observe(time.perf_counter() - self.started)

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        if exc_val is None:
            self._count("produced")
            return False
        if not isinstance(exc_val, Exception):
            return False  # cancellation: let FastStream handle it, the record is redelivered
        record = self.msg
        raw: bytes = getattr(record, "value", None) or b""
        try:
            cause = decode_as(raw, self.spec.consumes)
        except EventDecodeError as decode_error:
            await self._dead_letter(record, raw, decode_error)
            self._count("dead_lettered")
            return True
        if isinstance(exc_val, Unauthorized):
            refusal = EventDecodeError(exc_val.reason, field="signature")
            await self._dead_letter(record, raw, refusal)
        elif not isinstance(exc_val, StageError):
            logger.exception("%s: unexpected error on %s", self.spec.stage, cause.id)
        await publish_event(self.broker_ref(), stage_failed(self.spec, cause, exc_val), self.trust)
        self._count("failed")
        return True

    async def _dead_letter(self, record: Any, raw: bytes, error: EventDecodeError) -> None:
        await dead_letter(self.broker_ref(), record, raw, error, service=self.spec.stage)


def poll_interval_ms(spec: StageSpec[Any, Any], settings: RuntimeSettings) -> int:
    """The consumer's max poll interval: the setting, or longer when one event's handling
    (every retry included) may take longer."""
    attempts = settings.retry_attempts
    budget_s = (spec.longest_s + settings.retry_cap_s) * attempts + 60.0
    return max(settings.max_poll_interval_ms, int(budget_s * 1000))


def stage_router(
    spec: StageSpec[InT, OutT],
    *,
    broker_ref: Callable[[], KafkaBroker],
    trust: Trust,
    settings: RuntimeSettings | None = None,
    metrics: StageMetrics | None = None,
) -> KafkaRouter:
    """A router holding the stage's subscriber and publishers, ready to include in a broker.
    Every consumed record must pass ``trust`` before it is read; every emitted event is signed."""
    settings = settings or RuntimeSettings()
    outcome = partial(
        _OutcomeMiddleware, spec=spec, broker_ref=broker_ref, metrics=metrics, trust=trust
    )
    router = KafkaRouter(middlewares=[outcome])
    in_schema = CloudEvent[spec.consumes]  # type: ignore[name-defined]
    out_schema = CloudEvent[spec.produces]  # type: ignore[name-defined]

    subscriber = router.subscriber(
        spec.consumes.TOPIC,
        group_id=f"bentomesh-{spec.stage}",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_verifying_decoder(trust),
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=poll_interval_ms(spec, settings),
        max_workers=spec.concurrency,
        title=f"{spec.stage}:{spec.consumes.__name__}",
        description=(spec.consumes.__doc__ or "").strip(),
    )
    publisher = router.publisher(
        spec.produces.TOPIC,
        title=f"{spec.stage}:{spec.produces.__name__}",
        schema=out_schema,
        description=(spec.produces.__doc__ or "").strip(),
    )
    router.publisher(
        topics.STAGE_FAILED,
        title=f"{spec.stage}:StageFailed",
        schema=CloudEvent[StageFailed],
        description=f"{spec.stage} could not process an event.",
    )
    router.publisher(
        topics.DEAD_LETTER,
        title=f"{spec.stage}:DeadLetter",
        description="Original bytes of unreadable events.",
    )

    policy = RetryPolicy(settings.retry_attempts, settings.retry_base_s, settings.retry_cap_s)

    in_flight = metrics.in_flight.labels(spec.stage) if metrics is not None else None

    async def handle(event: CloudEvent[Any]) -> KafkaResponse:
        with in_flight.track_inprogress() if in_flight is not None else nullcontext():
            data = await with_retries(
                lambda: spec.handler(event),
                policy,
                what=f"{spec.stage} {event.subject or event.id}",
            )
        return respond(follow_up(event, data, source=spec.source), trust)

    # FastStream validates the body against the annotation, and documents it in AsyncAPI
    handle.__annotations__ = {"event": in_schema, "return": KafkaResponse}
    handle.__name__ = f"{spec.stage}_on_{spec.consumes.__name__}"
    subscriber(publisher(handle))
    return router
