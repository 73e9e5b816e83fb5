"""Revocation status (R6): the feeds received from the card call centre, each card's current
status, and the per-provider entries that business systems pull by sequence number."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from cardap.models import CardAP, Provider


class Status(models.TextChoices):
    SUSPENDED = "suspended", _("一時停止")
    RESUMED = "resumed", _("停止解除")
    REVOKED = "revoked", _("失効")


class Reason(models.TextChoices):
    LOST = "lost", _("紛失")
    STOLEN = "stolen", _("盗難")
    FOUND = "found", _("発見")
    REISSUED = "reissued", _("再交付")
    EXPIRED = "expired", _("有効期限切れ")
    OTHER = "other", _("その他")


class Feed(models.Model):
    """One attempt to take in a feed file: kept for every file, applied or not, with the reason."""

    class State(models.TextChoices):
        RECEIVED = "received", _("受信")
        APPLIED = "applied", _("適用済")
        DUPLICATE = "duplicate", _("適用済（重複）")
        REJECTED = "rejected", _("拒否")

    number = models.BigIntegerField(_("フィード番号"), null=True, blank=True, db_index=True)
    previous = models.BigIntegerField(_("前回フィード番号"), null=True, blank=True)
    source = models.CharField(_("取得元"), max_length=500)
    file_sha256 = models.CharField(_("ファイルSHA-256"), max_length=64, blank=True)
    size = models.BigIntegerField(_("サイズ（バイト）"), default=0)
    created = models.DateTimeField(_("作成日時"), null=True, blank=True)
    count = models.BigIntegerField(_("変更件数"), null=True, blank=True)
    state = models.CharField(_("結果"), max_length=20, choices=State.choices, default=State.RECEIVED)
    reason_code = models.CharField(_("拒否コード"), max_length=30, blank=True)
    reason = models.TextField(_("理由"), blank=True)
    reason_line = models.BigIntegerField(_("行"), null=True, blank=True)
    received_at = models.DateTimeField(_("受信日時"), auto_now_add=True)
    finished_at = models.DateTimeField(_("処理完了日時"), null=True, blank=True)
    cards_changed = models.BigIntegerField(_("状態が変わったカード"), default=0)
    entries_created = models.BigIntegerField(_("提供者向けエントリ"), default=0)
    notified = models.BooleanField(_("障害通知済"), default=False)

    class Meta:
        verbose_name = _("失効情報フィード")
        verbose_name_plural = _("失効情報フィード")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=models.Q(state="applied"), name="one_applied_feed_per_number"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.state}"

    REASON_LABELS = {
        "bad_signature": _("署名が正しくありません"),
        "malformed": _("形式に誤りがあります"),
        "wrong_count": _("件数がヘッダーと一致しません"),
        "wrong_digest": _("SHA-256ダイジェストがヘッダーと一致しません"),
        "oversized": _("サイズの上限を超えています"),
        "gap": _("フィード番号に欠番があります"),
        "regression": _("フィード番号が逆行しています"),
    }

    @property
    def reason_label(self) -> str:
        return str(self.REASON_LABELS.get(self.reason_code, self.reason_code))

    @property
    def badge(self) -> str:
        return {"applied": "ok", "duplicate": "ok", "received": "warn", "rejected": "bad"}[self.state]


class CardStatus(models.Model):
    """The current status of one card, known or not to carry card APs (a card may carry APs later).
    Suspension is reversible, revocation final (enforced by services.apply_feed)."""

    # Unique by a constraint, not unique=True: on PostgreSQL that adds a second (LIKE pattern)
    # index no query uses, written on every insert of a feed's new cards.
    card_id = models.CharField(_("カード識別子"), max_length=40)
    status = models.CharField(_("状態"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("理由"), max_length=10, choices=Reason.choices)
    effective_at = models.DateTimeField(_("発生日時"))
    # The feed that set this status: written only by apply_feed, with the Feed row it has just
    # created; feeds are never deleted (PROTECT stays in Django). No database-level foreign key
    # and no index: nothing reads by it, and a million-change feed paid a trigger call and an
    # index entry per row for them (and the index kept every status update from being HOT).
    feed = models.ForeignKey(
        Feed, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )

    class Meta:
        verbose_name = _("カード失効状態")
        verbose_name_plural = _("カード失効状態")
        constraints = [models.UniqueConstraint(fields=["card_id"], name="revocation_cardstatus_card_id_key")]

    def __str__(self) -> str:
        return f"{self.card_id}: {self.status}"


class RevocationEntry(models.Model):
    """One status change as a provider sees it: a user number of one card AP. The primary key is
    the strictly increasing sequence number clients pull by (feeds are applied one at a time)."""

    # Indexed by rev_entry_ap_seq (card AP first), so no index of its own.
    card_ap = models.ForeignKey(CardAP, on_delete=models.PROTECT, related_name="+", db_index=False)
    user_number = models.CharField(_("利用者番号"), max_length=64)
    status = models.CharField(_("状態"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("理由"), max_length=10, choices=Reason.choices)
    effective_at = models.DateTimeField(_("発生日時"))
    # As CardStatus.feed: set by apply_feed only, no database-level foreign key, no index.
    feed = models.ForeignKey(
        Feed, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    # The entry as the delta feed sends it after its "seq" (the rest of the JSON object, time in
    # Japan time), written by apply_feed in the statement that writes the row, from the same
    # values (selectors.ENTRY_WIRE). An entry never changes once written, so this cannot differ
    # from the columns; a page is then a concatenation. Rows written otherwise leave it empty
    # and are rendered from the columns when read.
    wire = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        verbose_name = _("失効情報エントリ")
        verbose_name_plural = _("失効情報エントリ")
        indexes = [models.Index(fields=["card_ap", "id"], name="rev_entry_ap_seq")]

    def __str__(self) -> str:
        return f"{self.pk} {self.card_ap_id} {self.status}"


class ProviderPull(models.Model):
    """A provider's last pull of the feed, shown to J-LIS staff and the provider's administrators."""

    provider = models.OneToOneField(Provider, on_delete=models.CASCADE, related_name="revocation_pull")
    pulled_at = models.DateTimeField(_("最終取得日時"))
    kind = models.CharField(_("種類"), max_length=10)
    last_seq = models.BigIntegerField(_("最終シーケンス番号"), null=True, blank=True)
    key_prefix = models.CharField(_("APIキー"), max_length=12, blank=True)
    pulls = models.BigIntegerField(_("取得回数"), default=0)

    KIND_LABELS = {"delta": _("差分"), "snapshot": _("スナップショット")}

    class Meta:
        verbose_name = _("提供者の取得状況")
        verbose_name_plural = _("提供者の取得状況")

    def __str__(self) -> str:
        return f"{self.provider}: {self.pulled_at}"

    @property
    def kind_label(self) -> str:
        return str(self.KIND_LABELS.get(self.kind, self.kind))
