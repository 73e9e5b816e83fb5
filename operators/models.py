"""Operators (the people who sign in) and the append-only, hash-chained audit log (R2, R9)."""
from __future__ import annotations

import hashlib
import json

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
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
    # Set with an initial or reset password; until the operator replaces it, only the password
    # change page opens (operators.middleware).
    must_change_password = models.BooleanField(_("パスワード変更が必要"), default=False)

    class Meta:
        verbose_name = _("操作者")
        verbose_name_plural = _("操作者")

    def clean(self) -> None:
        super().clean()
        if self.role != self.Role.JLIS_STAFF and self.role != self.Role.AUDITOR and self.provider_id is None:
            raise ValidationError({"provider": _("J-LIS職員以外はサービス提供者に所属します。")})
        if self.role == self.Role.JLIS_STAFF and self.provider_id is not None:
            raise ValidationError({"provider": _("J-LIS職員はサービス提供者に所属しません。")})

    def get_full_name(self) -> str:
        """Family name first, as Japanese names are written (and as the roster lists them)."""
        return f"{self.last_name} {self.first_name}".strip()


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


class Operation(models.TextChoices):
    """Card operations an operator may be allowed to perform (操作可能範囲, R2.2)."""

    LOAD = "load", _("搭載")
    DELETE = "delete", _("削除")
    DIAGNOSE = "diagnose", _("障害診断")
    MOVE_IN = "move_in", _("転入処理")


class Terminal(models.Model):
    """A terminal PC dedicated to this system (R9.3), with its appointed administrator (R2.3).

    The terminal agent authenticates with its own credential: only a SHA-256 digest of the
    high-entropy token is stored (a slow password hash buys nothing for 256-bit random secrets and
    would slow every agent poll)."""

    provider = models.ForeignKey(
        "cardap.Provider",
        on_delete=models.PROTECT,
        related_name="terminals",
        verbose_name=_("サービス提供者"),
    )
    name = models.CharField(_("端末名"), max_length=100)
    location = models.CharField(_("設置場所"), max_length=200)
    administrator = models.ForeignKey(
        Operator,
        on_delete=models.PROTECT,
        related_name="administered_terminals",
        verbose_name=_("端末管理者"),
    )
    is_active = models.BooleanField(_("有効"), default=True)
    credential_prefix = models.CharField(_("資格情報ID"), max_length=16, blank=True)
    credential_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    credential_issued_at = models.DateTimeField(_("資格情報発行日時"), null=True, blank=True)
    credential_revoked_at = models.DateTimeField(_("資格情報失効日時"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("最終接続日時"), null=True, blank=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("端末")
        verbose_name_plural = _("端末")
        ordering = ["provider__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="unique_terminal_name_per_provider")
        ]

    def __str__(self) -> str:
        # Translated so English pages get ASCII brackets; Japanese output is unchanged.
        return gettext("%(terminal)s（%(location)s）") % {"terminal": self.name, "location": self.location}

    def clean(self) -> None:
        super().clean()
        admin = self.administrator if self.administrator_id else None
        if admin is not None and self.provider_id is not None:
            if admin.provider_id != self.provider_id:
                raise ValidationError(
                    {"administrator": _("端末管理者は同じサービス提供者の操作者から選びます。")}
                )
            if admin.role not in (Operator.Role.TERMINAL_ADMIN, Operator.Role.PROVIDER_ADMIN):
                raise ValidationError(
                    {
                        "administrator": _(
                            "端末管理者には役割「端末管理者」または「提供者管理者」の人を選びます。"
                        )
                    }
                )

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_hash) and self.credential_revoked_at is None


class OperatorScope(models.Model):
    """One operation an operator may perform, on which terminals, for which card APs (R2.2).

    Nothing is allowed unless a row grants it; "all" flags cover the provider's terminals or card
    APs, including ones registered later."""

    operator = models.ForeignKey(
        Operator, on_delete=models.CASCADE, related_name="scopes", verbose_name=_("操作者")
    )
    operation = models.CharField(_("操作"), max_length=20, choices=Operation.choices)
    all_terminals = models.BooleanField(_("すべての端末"), default=False)
    terminals = models.ManyToManyField(Terminal, blank=True, related_name="scopes", verbose_name=_("端末"))
    all_card_aps = models.BooleanField(_("すべてのカードAP"), default=False)
    card_aps = models.ManyToManyField(
        "cardap.CardAP", blank=True, related_name="+", verbose_name=_("カードAP")
    )

    class Meta:
        verbose_name = _("操作可能範囲")
        verbose_name_plural = _("操作可能範囲")
        ordering = ["operator__username", "operation"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "operation"], name="one_scope_per_operation")
        ]

    def __str__(self) -> str:
        return f"{self.operator.username}: {self.get_operation_display()}"
