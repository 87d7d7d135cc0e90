"""Which version of a model may serve: order of registrations and rollback targets (pure)."""

from __future__ import annotations

from services.deployer.state import Deployment, DeploymentStore
from services.errors import NothingToRollBack


def registered_before(registered_at: float | None, than: float | None) -> bool:
    """Whether a registration is older than another; unknown times (events from producers
    before chain times existed) never count as older."""
    return registered_at is not None and than is not None and registered_at < than


def rollback_target(
    current: Deployment, store: DeploymentStore, to_version: str | None
) -> Deployment:
    """The deployment to serve again: the one ``current`` replaced, or the latest deployment
    of ``to_version`` that served before. ``NothingToRollBack`` says why there is none."""
    if to_version is None:
        previous = store.get(current.replaced_id) if current.replaced_id else None
        if previous is None:
            raise NothingToRollBack(f"{current.model} has no earlier version to roll back to")
        return previous
    if to_version == current.version:
        raise NothingToRollBack(f"{current.model} already serves version {to_version}")
    served = [d for d in store.history(current.model) if d.status == "replaced"]
    matching = [d for d in served if d.version == to_version]
    if not matching:
        versions = sorted({d.version for d in served}) or ["none"]
        raise NothingToRollBack(
            f"{current.model} never served version {to_version}; earlier versions it served: "
            + ", ".join(versions)
        )
    return matching[-1]
