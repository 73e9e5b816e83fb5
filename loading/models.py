"""Card conversations: one card operation between the server and the card in front of a terminal.

A conversation's state between agent round trips is its transcript (the responses received so
far) plus a random seed from which its SCP03 host challenges derive; any web process rebuilds the
secure channel from these and the key store (DESIGN.md "The relay"). Nothing secret is kept in
clear: no session key at all, and a PIN only sealed by the key store until the conversation ends.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CardConversation(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", _("待機中")
        RUNNING = "running", _("実行中")
        FINISHED = "finished", _("完了")
        FAILED = "failed", _("失敗")
        INTERRUPTED = "interrupted", _("中断")
        CANCELLED = "cancelled", _("取消")

    OPEN_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    terminal = models.ForeignKey(
        "operators.Terminal",
        on_delete=models.PROTECT,
        related_name="conversations",
        verbose_name=_("端末"),
    )
    program = models.CharField(_("操作"), max_length=40)
    params = models.JSONField(_("パラメータ"), default=dict, blank=True)
    sealed_secrets = models.TextField(blank=True, editable=False)
    seed = models.CharField(max_length=64, editable=False)
    state = models.CharField(_("状態"), max_length=12, choices=State.choices, default=State.QUEUED)
    # [{"digest": sha256 of the script sent, "label": step, "sent": n commands,
    #   "responses": [hex R-APDU, ...], "answer_digest": sha256 of the agent's AB body}, ...]
    transcript = models.JSONField(default=list, blank=True, editable=False)
    step_label = models.CharField(_("現在の手順"), max_length=60, blank=True)
    outcome = models.JSONField(_("結果"), null=True, blank=True)
    error_code = models.CharField(_("エラー"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now)
    started_at = models.DateTimeField(_("開始日時"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("最終通信日時"), null=True, blank=True)
    finished_at = models.DateTimeField(_("終了日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("カード通信")
        verbose_name_plural = _("カード通信")
        ordering = ["created_at"]
        constraints = [
            # One card operation at a time per terminal (and so per card in its reader).
            models.UniqueConstraint(
                fields=["terminal"],
                condition=Q(state__in=["queued", "running"]),
                name="one_open_conversation_per_terminal",
            )
        ]
        indexes = [models.Index(fields=["state", "last_activity_at"])]

    def __str__(self) -> str:
        return f"{self.program} {self.id}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def round_trips(self) -> int:
        return len(self.transcript)

    # --- state transitions (callers save) ----------------------------------------------------
    def mark_running(self, label: str) -> None:
        now = timezone.now()
        if self.state == self.State.QUEUED:
            self.state = self.State.RUNNING
            self.started_at = now
        self.step_label = label[:60]
        self.last_activity_at = now

    def record_exchange(
        self, *, digest: str, label: str, sent: int, responses: list[bytes], answer_digest: str
    ) -> None:
        self.transcript = [
            *self.transcript,
            {
                "digest": digest,
                "label": label,
                "sent": sent,
                "responses": [r.hex() for r in responses],
                "answer_digest": answer_digest,
            },
        ]
        self.last_activity_at = timezone.now()

    def _end(self, state: str) -> None:
        self.state = state
        self.finished_at = timezone.now()
        self.sealed_secrets = ""  # a PIN lives no longer than its conversation

    def finish(self, outcome: Any) -> None:
        self.outcome = outcome
        self._end(self.State.FINISHED)

    def fail(self, code: str, detail: dict[str, Any]) -> None:
        self.error_code = code[:40]
        self.outcome = detail
        self._end(self.State.FAILED)

    def interrupt(self, reason: str) -> None:
        self.error_code = reason[:40]
        self._end(self.State.INTERRUPTED)

    def cancel(self) -> None:
        self._end(self.State.CANCELLED)

    def exchanges(self) -> list[tuple[str, list[bytes]]]:
        return [(e["digest"], [bytes.fromhex(r) for r in e["responses"]]) for e in self.transcript]


class Job(models.Model):
    """One operator's card job at one terminal: read, load, delete or move-in processing (R4, R1.4).

    A job runs as card conversations: first the read every job starts with, then (when the card
    must change, or the reconciliation of that read must repair it) one change conversation. Its
    ``steps`` are the per-command log (step label, command name, status word): never PINs, keys,
    user numbers or APDU data. State transitions are the methods below (callers save and audit)."""

    class Kind(models.TextChoices):
        READ = "read", _("読取")
        LOAD = "load", _("搭載")
        DELETE = "delete", _("削除")
        MOVE_IN = "move_in", _("転入処理")

    class State(models.TextChoices):
        READING = "reading", _("読取中")
        CHANGING = "changing", _("書込中")
        SUCCEEDED = "succeeded", _("完了")
        FAILED = "failed", _("失敗")
        INTERRUPTED = "interrupted", _("中断")
        REFUSED = "refused", _("拒否")

    ACTIVE_STATES = (State.READING, State.CHANGING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("種別"), max_length=10, choices=Kind.choices)
    state = models.CharField(_("状態"), max_length=12, choices=State.choices, default=State.READING)
    terminal = models.ForeignKey(
        "operators.Terminal", on_delete=models.PROTECT, related_name="jobs", verbose_name=_("端末")
    )
    operator = models.ForeignKey(
        "operators.Operator", on_delete=models.PROTECT, related_name="jobs", verbose_name=_("操作者")
    )
    provider = models.ForeignKey(
        "cardap.Provider", on_delete=models.PROTECT, related_name="jobs", verbose_name=_("サービス提供者")
    )
    conversation = models.ForeignKey(
        CardConversation, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs"
    )
    # The card identifier (CIN, hex) once read; "expected_card" is the card the operator read
    # before choosing (load/delete/move-in refuse to touch another card).
    card_id = models.CharField(_("カード識別子"), max_length=40, blank=True, db_index=True)
    expected_card = models.CharField(max_length=40, blank=True)
    request_key = models.CharField(max_length=64, unique=True)
    # What was asked (card AP ids, per-AP options without secrets), and what was found/done.
    request = models.JSONField(default=dict, blank=True)
    content = models.JSONField(null=True, blank=True)  # the card as read (gpcard.operations.CardContent)
    result = models.JSONField(null=True, blank=True)
    steps = models.JSONField(default=list, blank=True)
    step_label = models.CharField(_("現在の手順"), max_length=60, blank=True)
    error_code = models.CharField(_("エラー"), max_length=40, blank=True)
    error_message = models.TextField(_("エラー内容"), blank=True)
    # Consent (R4.3): who confirmed the holder's consent, when, for which card APs.
    consent_by = models.CharField(_("同意確認者"), max_length=150, blank=True)
    consent_at = models.DateTimeField(_("同意確認日時"), null=True, blank=True)
    consent_card_aps = models.JSONField(_("同意対象のカードAP"), default=list, blank=True)
    resident_confirmed = models.BooleanField(_("住民であることの確認"), default=False)
    # Holder-chosen PINs, sealed by the key store until the change conversation takes them.
    sealed_secrets = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(_("開始日時"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("終了日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("カード操作")
        verbose_name_plural = _("カード操作")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"],
                condition=Q(state__in=["reading", "changing"]),
                name="one_active_job_per_terminal",
            ),
            models.UniqueConstraint(
                fields=["card_id"],
                condition=Q(state__in=["reading", "changing"]) & ~Q(card_id=""),
                name="one_active_job_per_card",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    # --- transitions (callers save) -----------------------------------------------------------
    def attach(self, conversation: CardConversation, *, changing: bool) -> None:
        self.conversation = conversation
        self.state = self.State.CHANGING if changing else self.State.READING

    def add_steps(self, steps: list[dict[str, str]]) -> None:
        self.steps = [*self.steps, *steps]

    def _end(self, state: str) -> None:
        self.state = state
        self.finished_at = timezone.now()
        self.step_label = ""

    def succeed(self, result: dict[str, Any]) -> None:
        self.result = result
        self._end(self.State.SUCCEEDED)

    def fail(self, code: str, message: str, result: dict[str, Any] | None = None) -> None:
        self.error_code, self.error_message = code[:40], message
        if result is not None:
            self.result = result
        self._end(self.State.FAILED)

    def refuse(self, code: str, message: str) -> None:
        self.error_code, self.error_message = code[:40], message
        self._end(self.State.REFUSED)

    def interrupt(self, reason: str) -> None:
        self.error_code = reason[:40]
        self._end(self.State.INTERRUPTED)


class JobItem(models.Model):
    """One card AP a job loads or deletes (or a repair of the reconciliation), and what became of it."""

    class Action(models.TextChoices):
        INSTALL = "install", _("搭載")
        DELETE = "delete", _("削除")
        REPAIR = "repair", _("修復（削除）")

    class Outcome(models.TextChoices):
        PLANNED = "planned", _("予定")
        DONE = "done", _("完了")
        REFUSED = "refused", _("カードが拒否")
        UNKNOWN = "unknown", _("不明（再読取で確認）")
        NOT_RUN = "not_run", _("未実行")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    card_ap = models.ForeignKey("cardap.CardAP", on_delete=models.PROTECT, null=True, blank=True)
    installation = models.ForeignKey(
        "cardap.CardAPInstallation", on_delete=models.PROTECT, null=True, blank=True, related_name="job_items"
    )
    aid = models.CharField(_("AID"), max_length=32)
    action = models.CharField(_("操作"), max_length=10, choices=Action.choices)
    outcome = models.CharField(_("結果"), max_length=10, choices=Outcome.choices, default=Outcome.PLANNED)
    sw = models.CharField(max_length=4, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.action} {self.aid}"


class InstallationEvent(models.Model):
    """A load or deletion of a provider's card AP on a card, for its business system (R7): the
    feed ``GET /api/v1/installations/?after=`` pages through these by ``id`` (strictly increasing).
    The card is named by a reference stable per provider, never by its CIN."""

    class Event(models.TextChoices):
        INSTALLED = "installed", _("搭載")
        DELETED = "deleted", _("削除")

    provider = models.ForeignKey(
        "cardap.Provider", on_delete=models.CASCADE, related_name="installation_events"
    )
    card_ap = models.ForeignKey("cardap.CardAP", on_delete=models.PROTECT, related_name="+")
    aid = models.CharField(max_length=32)
    user_number = models.CharField(max_length=64)
    card_ref = models.CharField(max_length=64)
    event = models.CharField(max_length=10, choices=Event.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["provider", "id"])]

    def __str__(self) -> str:
        return f"{self.event} {self.aid}"


class Diagnosis(models.Model):
    """One fault diagnosis (R5): a probe of the card in front of a terminal, or a failed job
    classified from its own step log. ``reference`` (DG-YYYYMMDD-XXXX) is what the operator quotes
    to J-LIS; J-LIS staff find the diagnosis, its steps and the job log by it in the admin."""

    class State(models.TextChoices):
        PROBING = "probing", _("診断中")
        DONE = "done", _("診断済")

    class Source(models.TextChoices):
        PROBE = "probe", _("カードの診断")
        JOB = "job", _("失敗した操作の記録")

    reference = models.CharField(_("受付番号"), max_length=20, unique=True, editable=False)
    provider = models.ForeignKey(
        "cardap.Provider",
        on_delete=models.PROTECT,
        related_name="diagnoses",
        verbose_name=_("サービス提供者"),
    )
    terminal = models.ForeignKey(
        "operators.Terminal", on_delete=models.PROTECT, related_name="diagnoses", verbose_name=_("端末")
    )
    operator = models.ForeignKey(
        "operators.Operator",
        on_delete=models.PROTECT,
        related_name="diagnoses",
        verbose_name=_("操作者"),
    )
    source = models.CharField(_("診断の種類"), max_length=10, choices=Source.choices, default=Source.PROBE)
    conversation = models.ForeignKey(
        CardConversation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="diagnoses",
        verbose_name=_("カード通信"),
    )
    job_reference = models.CharField(_("対象の操作"), max_length=60, blank=True)
    # the failed job's step log as it was classified: [{"label", "command", "sw", "code"?, ...}]
    job_log = models.JSONField(_("操作の手順記録"), default=list, blank=True)
    state = models.CharField(_("状態"), max_length=10, choices=State.choices, default=State.PROBING)
    result = models.JSONField(_("診断結果"), null=True, blank=True)  # gpcard.diagnosis.ProbeResult
    fault_class = models.CharField(_("障害の分類"), max_length=30, blank=True, db_index=True)
    card_id = models.CharField(_("カード識別子"), max_length=40, blank=True, db_index=True)
    incident_key = models.CharField(_("障害通知"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now)
    finished_at = models.DateTimeField(_("終了日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("障害診断")
        verbose_name_plural = _("障害診断")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["terminal", "created_at"])]

    def __str__(self) -> str:
        return self.reference

    @staticmethod
    def new_reference(today: Any) -> str:
        """DG-YYYYMMDD-XXXX: the date in Japan and four characters that read unambiguously aloud
        (no 0/O, 1/I/L)."""
        import secrets

        alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
        return f"DG-{today:%Y%m%d}-" + "".join(secrets.choice(alphabet) for _ in range(4))

    def complete(self, *, result: dict[str, Any] | None, fault_class: str, card_id: str = "") -> None:
        self.result = result
        self.fault_class = fault_class
        self.card_id = card_id or self.card_id
        self.state = self.State.DONE
        self.finished_at = timezone.now()
