"""Operators (the people who sign in) and the append-only, hash-chained audit log (R2, R9)."""
from __future__ import annotations

import hashlib
import json

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Operator(AbstractUser):
    class Role(models.TextChoices):
        JLIS_STAFF = "jlis_staff", _("J-LIS職員")
        PROVIDER_ADMIN = "provider_admin", _("提供者管理者")
        TERMINAL_ADMIN = "terminal_admin", _("端末管理者")
        OPERATOR = "operator", _("操作者")
        AUDITOR = "auditor", _("監査者")

    role = models.CharField(_("役割"), max_length=20, choices=Role.choices, default=Role.OPERATOR)
    provider = models.ForeignKey(
        "cardap.Provider",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="operators",
        verbose_name=_("サービス提供者"),
    )

    class Meta:
        verbose_name = _("操作者")
        verbose_name_plural = _("操作者")

    def clean(self) -> None:
        super().clean()
        if self.role != self.Role.JLIS_STAFF and self.role != self.Role.AUDITOR and self.provider_id is None:
            raise ValidationError({"provider": _("J-LIS職員以外はサービス提供者に所属します。")})
        if self.role == self.Role.JLIS_STAFF and self.provider_id is not None:
            raise ValidationError({"provider": _("J-LIS職員はサービス提供者に所属しません。")})

    @property
    def is_jlis(self) -> bool:
        return self.role == self.Role.JLIS_STAFF


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("the audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")


class AuditEntry(models.Model):
    """One audited event. Each entry's hash covers its content and the previous entry's hash, so
    altering or deleting any entry breaks the chain (`manage.py verify_audit`)."""

    at = models.DateTimeField(_("日時"), db_index=True)
    actor = models.CharField(_("実行者"), max_length=150, blank=True, db_index=True)
    provider_id_snapshot = models.BigIntegerField(_("提供者ID"), null=True, blank=True, db_index=True)
    action = models.CharField(_("操作"), max_length=64, db_index=True)
    ip = models.GenericIPAddressField(_("接続元"), null=True, blank=True)
    target = models.CharField(_("対象"), max_length=200, blank=True)
    detail = models.JSONField(_("詳細"), default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("監査ログ")
        verbose_name_plural = _("監査ログ")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")

    def canonical(self) -> bytes:
        return json.dumps(
            {
                "at": self.at.isoformat(timespec="microseconds"),
                "actor": self.actor,
                "provider": self.provider_id_snapshot,
                "action": self.action,
                "ip": self.ip,
                "target": self.target,
                "detail": self.detail,
                "prev": self.prev_hash,
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()
