"""What the seams of every adapter built on the skeleton read alike from a ``Link``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocpp_sansio.csms import CsmsCore

from .._skeleton import Link


class LinkSeam:
    """``ServerSeam.session_of`` and ``ServerSeam.version`` for skeleton links."""

    def session_of(self, link: Link) -> tuple[CsmsCore, Sequence[Any]] | None:
        session = link.session
        if session is None:
            return None
        return session.core, session.flows

    def version(self, link: Link) -> str | None:
        session = link.session
        return session.version if session is not None else None
