"""Who is calling: the result of authenticating a request. Pure data: no I/O.

Four kinds: a staff member signed in to the console (session cookie) or holding a staff bearer
token, a POS terminal or integration (OAuth2 client-credentials token), and a member signed in to
the portal. A staff or client principal acting for a merchant carries that merchant's id as
``tenant_id``: it comes from the verified token or session and the membership rows, never from a
client-supplied header alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from lianka.platform.errors import Forbidden
from lianka.platform.identity.permissions import Permission, Role


class Kind(StrEnum):
    STAFF = "staff"
    CLIENT = "client"
    MEMBER = "member"


@dataclass(frozen=True)
class Principal:
    kind: Kind
    #: staff user id, member id, or the API client's row id
    subject_id: uuid.UUID
    tenant_id: uuid.UUID | None = None
    permissions: frozenset[Permission] = frozenset()
    #: None: every branch of the tenant; otherwise only these
    branch_ids: frozenset[uuid.UUID] | None = None
    role: Role | None = None
    scopes: frozenset[str] = frozenset()
    #: "session" (cookie) or "bearer"
    via: str = "bearer"
    session_id: uuid.UUID | None = None
    token_id: str | None = None
    client_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_staff(self) -> bool:
        return self.kind is Kind.STAFF

    @property
    def is_client(self) -> bool:
        return self.kind is Kind.CLIENT

    @property
    def is_member(self) -> bool:
        return self.kind is Kind.MEMBER

    @property
    def tenant(self) -> uuid.UUID:
        """The merchant this request acts for (guards guarantee it for tenant routes)."""
        if self.tenant_id is None:
            raise Forbidden("This request is not acting for a merchant")
        return self.tenant_id

    def has(self, *permissions: Permission) -> bool:
        return all(p in self.permissions for p in permissions)

    def can_access_branch(self, branch_id: uuid.UUID | None) -> bool:
        """Branch-limited principals (managers, branch POS clients) act on their branches only;
        ``None`` (no branch: merchant-wide data) is for unlimited principals only."""
        if self.branch_ids is None:
            return True
        return branch_id is not None and branch_id in self.branch_ids

    def require_branch(self, branch_id: uuid.UUID | None) -> None:
        if not self.can_access_branch(branch_id):
            raise Forbidden("This branch is outside your access", branch_id=str(branch_id) if branch_id else None)

    def default_branch(self) -> uuid.UUID | None:
        """The branch a branch-limited principal acts at when the request names none."""
        if self.branch_ids is not None and len(self.branch_ids) == 1:
            return next(iter(self.branch_ids))
        return None
