"""Service providers and the card AP registry (R3, R10).

A provider is a municipality, government body or private business that has applied to use the
free areas of the card. A card AP is registered on a provider's request; J-LIS staff approve it
and assign the AID. An installation records which card carries which card AP instance.
"""
from __future__ import annotations

import datetime as dt

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

    class LegalBasis(models.TextChoices):
        ORDINANCE = "ordinance", _("条例")
        NOTICE = "notice", _("告示")
        MINISTER_CONFIRMATION = "minister_confirmation", _("法基準適合性確認（総務大臣）")

    # Legal basis for using the card's free areas (番号法第18条): an ordinance for prefectures and
    # municipalities, a public notice for the state and administrative bodies, the minister's
    # legal-compliance confirmation for private businesses (seed IV-1(5)).
    legal_basis_kind = models.CharField(
        _("法的根拠の種類"), max_length=30, choices=LegalBasis.choices, blank=True
    )
    legal_basis_reference = models.CharField(_("法的根拠（条例名・確認番号等）"), max_length=200, blank=True)
    legal_basis_date = models.DateField(_("法的根拠の日付"), null=True, blank=True)
    contract_reference = models.CharField(_("契約番号"), max_length=100, blank=True)
    status_changed_at = models.DateTimeField(_("状態変更日時"), null=True, blank=True)

    # Onboarding state machine (R10): the only moves services.transition_provider accepts.
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        "applied": ("legal_confirmed", "ended"),
        "legal_confirmed": ("contracted", "ended"),
        "contracted": ("live", "ended"),
        "live": ("suspended", "ended"),
        "suspended": ("live", "ended"),
        "ended": (),
    }
    # Which legal basis each kind of provider needs before it may go further than "applied".
    LEGAL_BASIS_FOR_KIND: dict[str, tuple[str, ...]] = {
        "municipality": ("ordinance",),
        "state": ("ordinance", "notice"),  # prefectures: ordinance; the state: public notice
        "admin_body": ("notice",),
        "private": ("minister_confirmation",),
    }

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

    def allowed_transitions(self) -> tuple[str, ...]:
        return self.TRANSITIONS.get(self.status, ())

    def allowed_legal_bases(self) -> tuple[str, ...]:
        return self.LEGAL_BASIS_FOR_KIND.get(self.kind, ())


# What a provider's registration request (登録依頼書) may set; the rest is J-LIS's to decide.
CARD_AP_REQUEST_FIELDS = (
    "name", "type", "area", "purpose", "data_layout",
    "structure", "file_size", "record_count", "record_length",
    "pin_source", "pin_min_length", "pin_max_length", "pin_retry_limit",
    "user_number_source", "user_number_length", "user_number_charset",
    "memory_requested", "input_format", "input_file",
)


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

    class PinSource(models.TextChoices):
        NONE = "", _("暗証番号なし")
        HOLDER = "holder", _("利用者が設定する暗証番号")
        SYSTEM = "system", _("システム固定の暗証番号")

    class Structure(models.TextChoices):
        BINARY = "binary", _("バイナリ")
        RECORDS = "records", _("レコード")

    class UserNumberSource(models.TextChoices):
        GENERATED = "generated", _("システムが生成")
        SUPPLIED = "supplied", _("提供者が指定")

    class Charset(models.TextChoices):
        DIGITS = "digits", _("数字")
        ALPHANUMERIC = "alphanumeric", _("英大文字・数字")

    # --- the registration request (登録依頼書) ---
    purpose = models.TextField(_("利用目的"), blank=True)
    data_layout = models.TextField(_("データ構成"), blank=True)
    structure = models.CharField(_("ファイル構造"), max_length=10, choices=Structure.choices, blank=True)
    file_size = models.PositiveIntegerField(_("ファイルサイズ（バイト）"), null=True, blank=True)
    record_count = models.PositiveSmallIntegerField(_("レコード数"), null=True, blank=True)
    record_length = models.PositiveSmallIntegerField(_("レコード長"), null=True, blank=True)
    pin_source = models.CharField(_("暗証番号"), max_length=10, choices=PinSource.choices, blank=True)
    pin_min_length = models.PositiveSmallIntegerField(_("暗証番号の最小桁数"), default=4)
    pin_max_length = models.PositiveSmallIntegerField(_("暗証番号の最大桁数"), default=8)
    pin_retry_limit = models.PositiveSmallIntegerField(_("暗証番号の試行回数上限"), default=3)
    user_number_source = models.CharField(
        _("利用者番号の付番"),
        max_length=10,
        choices=UserNumberSource.choices,
        default=UserNumberSource.GENERATED,
    )
    user_number_length = models.PositiveSmallIntegerField(_("利用者番号の桁数"), default=16)
    user_number_charset = models.CharField(
        _("利用者番号の文字種"), max_length=15, choices=Charset.choices, default=Charset.DIGITS
    )
    memory_requested = models.PositiveIntegerField(_("必要な容量（バイト）"), null=True, blank=True)
    input_file = models.TextField(_("入力ファイル（独自カードAP）"), blank=True)
    input_format = models.CharField(_("入力ファイル形式"), max_length=4, blank=True)
    requested_by = models.CharField(_("依頼者"), max_length=150, blank=True)
    # --- review ---
    reviewed_by = models.CharField(_("審査者"), max_length=150, blank=True)
    reviewed_at = models.DateTimeField(_("審査日時"), null=True, blank=True)
    rejection_reason = models.TextField(_("却下理由"), blank=True)
    retired_at = models.DateTimeField(_("廃止日時"), null=True, blank=True)
    # --- manufacture (filled on approval) ---
    serial = models.PositiveIntegerField(_("通番"), unique=True, null=True, blank=True)
    load_file_aid = models.CharField(
        _("ロードファイルAID"), max_length=32, unique=True, null=True, blank=True, validators=[aid_validator]
    )
    description_hex = models.TextField(_("カードAP記述（16進）"), blank=True)
    load_file = models.BinaryField(_("ロードファイル"), null=True, blank=True)
    memory_cost = models.PositiveIntegerField(_("所要容量（バイト）"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    dap_demo_key = models.BooleanField(_("デモ用DAP鍵で署名"), default=False)

    class Meta:
        verbose_name = _("カードAP")
        verbose_name_plural = _("カードAP")
        ordering = ["provider__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.aid or '-'})"

    @property
    def is_custom(self) -> bool:
        return self.type == self.Type.CUSTOM

    @property
    def needs_pin(self) -> bool:
        return bool(self.pin_source)


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
    note = models.CharField(_("備考（根拠となる契約等）"), max_length=200, blank=True)
    created_by = models.CharField(_("登録者"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("カードAP共同利用")
        verbose_name_plural = _("カードAP共同利用")
        constraints = [
            models.UniqueConstraint(fields=["card_ap", "provider", "since"], name="unique_share_per_start")
        ]

    def __str__(self) -> str:
        return f"{self.provider} → {self.card_ap} ({self.get_role_display()})"

    def is_active_on(self, day: dt.date) -> bool:
        return self.since <= day and (self.until is None or day <= self.until)


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


class AIDSerialCounter(models.Model):
    """The single counter card AP serials come from. Locked with SELECT … FOR UPDATE while an
    approval allocates, so two approvals never get the same serial; only ever increases."""

    name = models.CharField(max_length=30, primary_key=True)
    last_serial = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("AID採番カウンタ")
        verbose_name_plural = _("AID採番カウンタ")

    def __str__(self) -> str:
        return f"{self.name}: {self.last_serial}"


class AIDAllocation(models.Model):
    """Every AID ever assigned. Kept when the card AP is retired or deleted, so that an AID is
    never handed out twice (cards in the field may still carry it)."""

    serial = models.PositiveIntegerField(_("通番"), unique=True)
    area = models.CharField(_("領域"), max_length=10, choices=CardAP.Area.choices)
    aid = models.CharField(_("AID"), max_length=32, unique=True)
    load_file_aid = models.CharField(_("ロードファイルAID"), max_length=32, unique=True)
    card_ap = models.ForeignKey(
        CardAP, on_delete=models.SET_NULL, null=True, blank=True, related_name="aid_allocations"
    )
    card_ap_name = models.CharField(_("カードAP名称"), max_length=200)
    allocated_at = models.DateTimeField(_("採番日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("AID採番記録")
        verbose_name_plural = _("AID採番記録")
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.aid


class StoredSecret(models.Model):
    """A key sealed by the key store (cardap.keystore): a region master key or a version of a
    card AP key. Only the ciphertext is stored; the plaintext never reaches the database or logs."""

    ref = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, default="ap")  # "master" | "ap"
    name = models.CharField(max_length=100, default="")
    version = models.PositiveIntegerField(default=1)
    purpose = models.CharField(max_length=100)
    ciphertext = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("保管鍵")
        verbose_name_plural = _("保管鍵")
        constraints = [
            models.UniqueConstraint(fields=["kind", "name", "version"], name="one_key_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} ({self.ref})"


class CardAPKey(models.Model):
    """One version of a card AP's key (mutual authentication / secure messaging). The key itself
    lives in the key store; `key_ref` names it there. Rotation adds a version and retires the old."""

    card_ap = models.ForeignKey(CardAP, on_delete=models.CASCADE, related_name="keys")
    version = models.PositiveSmallIntegerField(_("版"))
    key_ref = models.CharField(_("鍵参照"), max_length=100)  # the key's name in the key store
    key_length = models.PositiveSmallIntegerField(_("鍵長（バイト）"), default=16)
    created_at = models.DateTimeField(_("生成日時"), auto_now_add=True)
    retired_at = models.DateTimeField(_("廃止日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("カードAP鍵")
        verbose_name_plural = _("カードAP鍵")
        ordering = ["card_ap", "-version"]
        constraints = [models.UniqueConstraint(fields=["card_ap", "version"], name="unique_key_version")]

    def __str__(self) -> str:
        return f"{self.card_ap.name} v{self.version}"


class AutoLoadPreset(models.Model):
    """A named list of card APs a provider's terminals load without picking each time (R4.2)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(_("名称"), max_length=100)
    description = models.CharField(_("説明"), max_length=200, blank=True)
    card_aps = models.ManyToManyField(CardAP, through="AutoLoadPresetItem", related_name="presets")
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)

    class Meta:
        verbose_name = _("自動搭載セット")
        verbose_name_plural = _("自動搭載セット")
        ordering = ["provider__name", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="unique_preset_name")]

    def __str__(self) -> str:
        return f"{self.provider}: {self.name}"

    def ordered_card_aps(self) -> list[CardAP]:
        return [item.card_ap for item in self.items.select_related("card_ap").order_by("position")]


class AutoLoadPresetItem(models.Model):
    preset = models.ForeignKey(AutoLoadPreset, on_delete=models.CASCADE, related_name="items")
    card_ap = models.ForeignKey(CardAP, on_delete=models.PROTECT, related_name="preset_items")
    position = models.PositiveSmallIntegerField(_("順序"), default=0)

    class Meta:
        verbose_name = _("自動搭載セットの項目")
        verbose_name_plural = _("自動搭載セットの項目")
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["preset", "card_ap"], name="unique_preset_item")]

    def __str__(self) -> str:
        return f"{self.preset.name}: {self.card_ap.name}"


class MaintenanceWindow(models.Model):
    """Planned maintenance (R8.2): no card operation starts inside it; providers are told ahead."""

    title = models.CharField(_("件名"), max_length=200)
    description = models.TextField(_("内容"), blank=True)
    starts_at = models.DateTimeField(_("開始日時"))
    ends_at = models.DateTimeField(_("終了日時"))
    urgent = models.BooleanField(_("緊急"), default=False)
    created_by = models.CharField(_("登録者"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)
    notified_at = models.DateTimeField(_("通知日時"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("中止日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("計画保守")
        verbose_name_plural = _("計画保守")
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="window_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.title


class FailureIncident(models.Model):
    """A failure reported to a provider's failure contact (R8.3); one mail per incident key."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="failure_incidents")
    incident_key = models.CharField(_("インシデントキー"), max_length=200)
    summary = models.CharField(_("概要"), max_length=200)
    detail = models.TextField(_("詳細"), blank=True)
    first_seen_at = models.DateTimeField(_("検知日時"), auto_now_add=True)
    notified_at = models.DateTimeField(_("通知日時"), null=True, blank=True)
    occurrences = models.PositiveIntegerField(_("発生回数"), default=1)

    class Meta:
        verbose_name = _("障害通知")
        verbose_name_plural = _("障害通知")
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "incident_key"], name="one_notice_per_incident")
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.incident_key}"


class PackageRecipientKey(models.Model):
    """A public key (X25519) a provider registers so that access key packages can be encrypted to
    it instead of to a passphrase. Only the public key is held here."""

    provider = models.ForeignKey(
        Provider, on_delete=models.CASCADE, related_name="package_keys", verbose_name=_("提供者")
    )
    name = models.CharField(_("名称"), max_length=100)
    public_key = models.CharField(_("公開鍵（X25519, base64）"), max_length=64)
    fingerprint = models.CharField(_("フィンガープリント（SHA-256）"), max_length=64)
    created_by = models.CharField(_("登録者"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("登録日時"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("失効日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("鍵パッケージ受領用公開鍵")
        verbose_name_plural = _("鍵パッケージ受領用公開鍵")
        ordering = ["provider", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "fingerprint"], name="one_package_key_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint[:16]})"
