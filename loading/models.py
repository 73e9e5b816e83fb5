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
    # The agent session the conversation's scripts were handed to: a script is never handed to
    # another agent (it could not know whether the first one ran it).
    agent_session = models.CharField(max_length=64, blank=True, editable=False)
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


class TerminalPresence(models.Model):
    """What the server knows of a terminal's agent: when it last polled and what it reported
    (reader, card present, ATR, version), and which agent session holds the terminal."""

    terminal = models.OneToOneField(
        "operators.Terminal",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="presence",
        verbose_name=_("端末"),
    )
    agent_session = models.CharField(max_length=64, blank=True, editable=False)
    # The session taken over by agent_session: told so if it comes back, never given the terminal.
    superseded_session = models.CharField(max_length=64, blank=True, editable=False)
    agent_version = models.CharField(_("エージェントの版"), max_length=60, blank=True)
    agent_address = models.GenericIPAddressField(_("エージェントのアドレス"), null=True, blank=True)
    reader = models.CharField(_("カードリーダー"), max_length=200, blank=True)
    card_present = models.BooleanField(_("カードあり"), default=False)
    atr = models.CharField(_("ATR"), max_length=80, blank=True)
    last_poll_at = models.DateTimeField(_("最終ポーリング日時"), null=True, blank=True)
    connected_at = models.DateTimeField(_("接続日時"), null=True, blank=True)
    taken_over_at = models.DateTimeField(_("引き継ぎ日時"), null=True, blank=True)

    class Meta:
        verbose_name = _("端末の接続状態")
        verbose_name_plural = _("端末の接続状態")

    def __str__(self) -> str:
        return f"presence {self.terminal_id}"
