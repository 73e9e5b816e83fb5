"""Service providers and the card AP registry (R3, R10).

A provider is a municipality, government body or private business that has applied to use the
free areas of the card. A card AP is registered on a provider's request; J-LIS staff approve it
and assign the AID. An installation records which card carries which card AP instance.
"""
from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

local_gov_code_validator = RegexValidator(r"^\d{6}$", _("地方公共団体コードは6桁の数字です。"))
aid_validator = RegexValidator(r"^(?:[0-9A-F]{2}){5,16}$", _("AIDは5〜16バイトの16進数（大文字）です。"))


class Provider(models.Model):
    class Kind(models.TextChoices):
        STATE = "state", _("国・都道府県")
        MUNICIPALITY = "municipality", _("市区町村")
        ADMIN_BODY = "admin_body", _("行政機関等")
        PRIVATE = "private", _("民間事業者")

    class Status(models.TextChoices):
        APPLIED = "applied", _("申請中")
        LEGAL_CONFIRMED = "legal_confirmed", _("法的根拠確認済")
        CONTRACTED = "contracted", _("契約済")
        LIVE = "live", _("運用中")
        SUSPENDED = "suspended", _("停止中")
        ENDED = "ended", _("終了")

    name = models.CharField(_("名称"), max_length=200, unique=True)
    kind = models.CharField(_("種別"), max_length=20, choices=Kind.choices)
    local_gov_code = models.CharField(
        _("地方公共団体コード"), max_length=6, blank=True, validators=[local_gov_code_validator]
    )
    status = models.CharField(_("状態"), max_length=20, choices=Status.choices, default=Status.APPLIED)
    operations_email = models.EmailField(_("運用連絡先"), blank=True)
    failure_email = models.EmailField(_("障害連絡先"), blank=True)
    maintenance_email = models.EmailField(_("保守通知先"), blank=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("サービス提供者")
        verbose_name_plural = _("サービス提供者")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_live(self) -> bool:
        return self.status == self.Status.LIVE

    @property
    def is_municipality(self) -> bool:
        return self.kind == self.Kind.MUNICIPALITY


class CardAP(models.Model):
    class Type(models.TextChoices):
        A = "A", _("A型（レコード）")
        C = "C", _("C型（共通）")
        D = "D", _("D型（バイナリ）")
        CUSTOM = "custom", _("独自カードAP")

    class Area(models.TextChoices):
        LOCAL = "local", _("地域住民向け領域")
        EXTENDED = "extended", _("拡張利用領域")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("登録依頼中")
        APPROVED = "approved", _("承認済")
        REJECTED = "rejected", _("却下")
        RETIRED = "retired", _("廃止")

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="card_aps", verbose_name=_("代表提供者")
    )
    name = models.CharField(_("名称"), max_length=200)
    type = models.CharField(_("種類"), max_length=10, choices=Type.choices)
    area = models.CharField(_("領域"), max_length=10, choices=Area.choices)
    status = models.CharField(_("状態"), max_length=20, choices=Status.choices, default=Status.REQUESTED)
    aid = models.CharField(
        _("AID"), max_length=32, unique=True, null=True, blank=True, validators=[aid_validator]
    )
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("カードAP")
        verbose_name_plural = _("カードAP")
        ordering = ["provider__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.aid or '-'})"


class CardAPShare(models.Model):
    """Another provider's relationship to a card AP (R3.4): co-owner shares it, affiliate only uses it."""

    class Role(models.TextChoices):
        SHARED = "shared", _("共同利用")
        AFFILIATE = "affiliate", _("加盟店等（利用のみ）")

    card_ap = models.ForeignKey(CardAP, on_delete=models.CASCADE, related_name="shares")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="shared_card_aps")
    role = models.CharField(_("関係"), max_length=20, choices=Role.choices)
    since = models.DateField(_("開始日"))
    until = models.DateField(_("終了日"), null=True, blank=True)

    class Meta:
        verbose_name = _("カードAP共同利用")
        verbose_name_plural = _("カードAP共同利用")
        constraints = [
            models.UniqueConstraint(fields=["card_ap", "provider", "since"], name="unique_share_per_start")
        ]

    def __str__(self) -> str:
        return f"{self.provider} → {self.card_ap} ({self.get_role_display()})"


class CardAPInstallation(models.Model):
    """Which card carries which card AP instance, with which user number, since when (R3, R6).

    The card is known only by its card identifier (GlobalPlatform CIN, hex): nothing else about
    the holder is stored.
    """

    class State(models.TextChoices):
        INSTALLING = "installing", _("搭載中")
        INSTALLED = "installed", _("搭載済（未設定）")
        PERSONALISED = "personalised", _("搭載済")
        DELETING = "deleting", _("削除中")
        DELETED = "deleted", _("削除済")

    card_id = models.CharField(_("カード識別子"), max_length=40, db_index=True)
    card_ap = models.ForeignKey(CardAP, on_delete=models.PROTECT, related_name="installations")
    user_number = models.CharField(_("利用者番号"), max_length=64)
    state = models.CharField(_("状態"), max_length=20, choices=State.choices, default=State.INSTALLING)
    installed_at = models.DateTimeField(_("搭載日時"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("削除日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("カードAP搭載記録")
        verbose_name_plural = _("カードAP搭載記録")
        constraints = [
            models.UniqueConstraint(
                fields=["card_id", "card_ap"],
                condition=~models.Q(state="deleted"),
                name="one_live_installation_per_card_ap",
            )
        ]

    def __str__(self) -> str:
        return f"{self.card_id}: {self.card_ap}"


class ProviderAPIKey(models.Model):
    """A credential for a provider's business system (REST API). Only a hash is stored; the key
    itself is shown once when issued. Optional allow-list of client networks (CIDR)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("名称"), max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    allowed_networks = models.JSONField(_("接続元制限（CIDR）"), default=list, blank=True)
    created_at = models.DateTimeField(_("発行日時"), auto_now_add=True)
    created_by = models.CharField(_("発行者"), max_length=150, blank=True)
    revoked_at = models.DateTimeField(_("失効日時"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("最終利用日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("APIキー")
        verbose_name_plural = _("APIキー")

    def __str__(self) -> str:
        return f"{self.provider}: {self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
