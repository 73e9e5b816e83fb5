"""Card jobs driven by their conversations: when the read ends, reconcile the card with the
database and start the change (or repair) conversation; when that ends, record the outcome.
Runs inside the transaction of the agent's POST that ended the conversation (engine signals), so
the job, the installations and the audit entries change together or not at all.

Consistency (DESIGN.md "Jobs and consistency"): the intended change of every card AP is recorded
(``CardAPInstallation`` installing / deleting) before the script that changes the card is handed
out; its outcome after the responses. What a torn or interrupted script leaves open, the next read
of that card settles from the card's own content (GET STATUS)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cardap.keystore import get_keystore
from cardap.models import CardAP, CardAPInstallation
from gpcard import gp, operations
from gpcard.conversation import Batch
from gpcard.operations import CardContent
from loading import engine, rules
from loading.engine import Context, conversation_ended, conversation_progressed
from loading.models import CardConversation, InstallationEvent, Job, JobItem
from operators.audit import record

log = logging.getLogger(__name__)
I = CardAPInstallation.State  # noqa: E741 - short alias for the states
PERSONALISED = 0x0F

ERROR_MESSAGES = {
    "card-lost": gettext_lazy("カードとの通信が途切れました（カードが抜かれた・電源断など）。"),
    "card-changed": gettext_lazy("読み取ったカードと別のカードがかざされています。"),
    "card-used-elsewhere": gettext_lazy(
        "読み取った後にカードが別の端末で使われました。カードは変更されていません。"
    ),
    "card-refused": gettext_lazy("カードが命令を拒否しました。"),
    "sd-locked": gettext_lazy("カードまたは領域がロックされています。"),
    "wrong-keys": gettext_lazy("カードの鍵が一致しません。"),
    "not-my-number-card": gettext_lazy("マイナンバーカードとして認識できません。"),
    "agent-silent": gettext_lazy("端末のエージェントから応答がありません。"),
    "internal-error": gettext_lazy("システム内部のエラーです。"),
}
NEXT_STEP = gettext_lazy(
    "カードをかざし直して「カード読取」を行ってください。読取時にカードとシステムの記録が照合され、中途半端な状態は自動で修復されます。"
)


def card_ref(provider_id: int, cin: str) -> str:
    """A card reference stable per provider, never the CIN itself, and different for each provider."""
    key = hashlib.sha256(f"cardap card reference/{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{provider_id}:{cin}".encode(), hashlib.sha256).hexdigest()[:32]


# --- the per-step log ----------------------------------------------------------------------------


class _LogContext(Context):
    """Replays a program only to name its commands: a PIN is never opened for that."""

    def secret(self, name: str) -> str:
        return "0000"


def step_log(conv: CardConversation) -> list[dict[str, str]]:
    """[{step, command, sw}] for every command of the conversation that reached the card (and one
    with sw "" for the command the card did not answer)."""
    exchanges = conv.exchanges()
    if len(conv.replayed_batches) >= len(exchanges):
        # The engine has just replayed the program over this transcript (checked): its batches.
        return _log_entries(zip(conv.replayed_batches, (r for _d, r in exchanges), strict=False))
    ctx = _LogContext(str(conv.id), conv.terminal_id, conv.params, bytes.fromhex(conv.seed))

    def replayed() -> Iterator[tuple[Batch, list[bytes]]]:
        gen = engine.get_program(conv.program)(ctx)
        batch: Batch = next(gen)
        for _digest, responses in exchanges:
            yield batch, responses
            batch = gen.send(responses)

    return _log_entries(replayed())


def _log_entries(exchanges: Iterator[tuple[Batch, list[bytes]]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    target = ""
    try:
        for batch, responses in exchanges:
            for i, command in enumerate(batch.commands):
                if command[1] == 0xA4 and len(command) > 5:  # SELECT: what the next commands address
                    target = _target(command[5 : 5 + command[4]].hex().upper())
                if i < len(responses):
                    sw = responses[i][-2:].hex().upper()
                elif i == len(responses) and (
                    not responses or responses[-1][-2:] in (b"\x90\x00", b"\x63\x10")
                ):
                    sw = ""
                else:
                    break
                out.append(
                    {
                        "step": batch.label,
                        "command": operations.command_name(command),
                        "sw": sw,
                        "target": target,
                    }
                )
                if not sw:
                    break
    except StopIteration:
        pass
    except Exception as exc:  # a program that refused the card's answers ends its log here
        log.debug("step log ends at %s", type(exc).__name__)
    return out


def _target(aid: str) -> str:
    """What a SELECT addresses, for fault diagnosis: the card manager, an area SD or an AP."""
    if aid == "A000000151000000":
        return "isd"
    return "sd" if aid.startswith("D3921000310002") else "ap"


# --- reconciliation ------------------------------------------------------------------------------


def _audit(job: Job, action: str, detail: dict[str, Any], actor: Any = None) -> None:
    record(
        action=action,
        actor=actor if actor is not None else "system",
        provider_id=job.provider_id,
        target=f"job:{job.pk}",
        detail=detail,
    )


def _event(row: CardAPInstallation, event: str) -> None:
    ap = row.card_ap
    providers = {ap.provider_id, *ap.shares.values_list("provider_id", flat=True)}
    for provider_id in providers:
        InstallationEvent.objects.create(
            provider_id=provider_id,
            card_ap=ap,
            aid=ap.aid or "",
            user_number=row.user_number,
            card_ref=card_ref(provider_id, row.card_id),
            event=event,
        )


def _set(row: CardAPInstallation, state: str) -> None:
    was = row.state
    row.state = state
    if state == I.DELETED:
        row.deleted_at = timezone.now()
    row.save(update_fields=["state", "deleted_at"])
    if state == I.PERSONALISED and was != I.PERSONALISED:
        _event(row, InstallationEvent.Event.INSTALLED)
    if state == I.DELETED and was in (I.PERSONALISED, I.DELETING):
        _event(row, InstallationEvent.Event.DELETED)


def _area_of(aid: str) -> str:
    return "local" if aid[6:8] == "01" else "extended"


def reconcile(job: Job, content: CardContent) -> list[dict[str, Any]]:
    """Compare the card with the database. Corrections the database alone can make are made now
    (each logged and audited); those the card needs come back as repair actions (a half-installed
    or unpersonalised AP is deleted: its PIN is gone, it cannot be completed)."""
    on_card = {aid: lc for area in content.areas.values() for aid, lc in area.instances.items()}
    # Lock the card's installation rows only ("of self"): locking the joined card AP row too would
    # serialise every read of a card carrying that AP and deadlock against the deferred foreign
    # key checks (KEY SHARE on the card AP) of a transaction holding the audit log's lock.
    rows = list(
        CardAPInstallation.objects.select_for_update(of=("self",))
        .filter(card_id=content.cin)
        .exclude(state=I.DELETED)
        .select_related("card_ap")
    )
    repairs: list[dict[str, Any]] = []
    corrections: list[dict[str, str]] = []
    known = set()
    for row in rows:
        ap = row.card_ap
        aid = ap.aid or ""
        known.add(aid)
        lc = on_card.get(aid)
        if lc == PERSONALISED:
            if row.state != I.PERSONALISED:
                corrections.append({"aid": aid, "from": row.state, "to": I.PERSONALISED})
                _set(row, I.PERSONALISED)
        elif lc is None:
            if ap.is_custom and row.state in (I.INSTALLING, I.INSTALLED):
                # Torn between the last LOAD and INSTALL: the load file may be left on its own.
                repairs.append(_repair(job, ap, aid, row, may_be_absent=True))
            corrections.append({"aid": aid, "from": row.state, "to": I.DELETED})
            _set(row, I.DELETED)
        else:
            corrections.append({"aid": aid, "from": row.state, "to": I.DELETING})
            _set(row, I.DELETING)
            repairs.append(_repair(job, ap, aid, row))
    for aid, lc in on_card.items():
        if aid not in known and lc != PERSONALISED:
            stray = CardAP.objects.filter(aid=aid).first()
            corrections.append({"aid": aid, "from": f"{lc:02X}", "to": "repair"})
            repairs.append(_repair(job, stray, aid, None))
    if corrections:
        job.add_steps(
            [
                {"step": "reconcile", "command": f"{c['aid']} {c['from']}→{c['to']}", "sw": ""}
                for c in corrections
            ]
        )
        _audit(job, "installation.reconciled", {"card_id": content.cin, "corrections": corrections})
    return repairs


def _repair(
    job: Job, ap: CardAP | None, aid: str, row: CardAPInstallation | None, *, may_be_absent: bool = False
) -> dict[str, Any]:
    item = JobItem.objects.create(
        job=job, card_ap=ap, installation=row, aid=aid, action=JobItem.Action.REPAIR
    )
    return {
        "ref": str(item.pk),
        "op": "delete",
        "area": _area_of(aid),
        "instance": aid,
        "load_file": (ap.load_file_aid or "") if ap is not None and ap.is_custom else "",
        "may_be_absent": may_be_absent,
    }


# --- planning the change ------------------------------------------------------------------------


def _plan(job: Job, content: CardContent) -> list[dict[str, Any]]:
    """The job's own changes, checked against the job's own read; intents recorded."""
    req = job.request
    actions: list[dict[str, Any]] = []
    if job.kind == Job.Kind.LOAD:
        items = list(job.items.filter(action=JobItem.Action.INSTALL).select_related("card_ap"))
        aps = [i.card_ap for i in items if i.card_ap is not None]
        rules.check_load_rules(
            provider=job.provider, card_aps=aps, content=content, resident_confirmed=job.resident_confirmed
        )
        for item in items:
            ap = item.card_ap
            assert ap is not None
            number = req["user_numbers"][str(ap.pk)]
            row = CardAPInstallation.objects.create(
                card_id=content.cin, card_ap=ap, user_number=number, state=I.INSTALLING
            )
            item.installation = row
            item.save(update_fields=["installation"])
            actions.append(
                {
                    "ref": str(item.pk),
                    "op": "install",
                    "card_ap": ap.pk,
                    "user_number": number,
                    "key_version": req.get("key_versions", {}).get(str(ap.pk)),
                }
            )
    elif job.kind == Job.Kind.DELETE:
        items = list(job.items.filter(action=JobItem.Action.DELETE).select_related("card_ap"))
        aps = [i.card_ap for i in items if i.card_ap is not None]
        rules.check_on_card(aps, content)
        for item in items:
            actions.append(_delete_spec(item, content))
    elif job.kind == Job.Kind.MOVE_IN:
        for aid in sorted(content.areas["local"].instances):
            if job.items.filter(aid=aid, action=JobItem.Action.REPAIR).exists():
                continue  # already being repaired (deleted) by the reconciliation
            ap = CardAP.objects.filter(aid=aid).first()
            item = JobItem.objects.create(job=job, card_ap=ap, aid=aid, action=JobItem.Action.DELETE)
            actions.append(_delete_spec(item, content))
    return actions


def _delete_spec(item: JobItem, content: CardContent) -> dict[str, Any]:
    ap = item.card_ap
    row = None
    if ap is not None:
        row = (
            CardAPInstallation.objects.select_for_update()
            .filter(card_id=content.cin, card_ap=ap)
            .exclude(state=I.DELETED)
            .first()
        )
        if row is not None:
            _set(row, I.DELETING)
            item.installation = row
            item.save(update_fields=["installation"])
    return {
        "ref": str(item.pk),
        "op": "delete",
        "area": _area_of(item.aid),
        "instance": item.aid,
        "load_file": (ap.load_file_aid or "") if ap is not None and ap.is_custom else "",
    }


# --- the outcome ---------------------------------------------------------------------------------


def _apply_outcome(job: Job, outcome: dict[str, Any]) -> None:
    by_ref = {r["ref"]: r for r in outcome.get("actions", [])}
    for item in job.items.select_related("installation", "card_ap"):
        res = by_ref.get(str(item.pk))
        if res is None:
            continue
        result, row = res["result"], item.installation
        item.sw = res.get("sw", "")
        item.outcome = {
            "done": JobItem.Outcome.DONE,
            "refused": JobItem.Outcome.REFUSED,
            "unknown": JobItem.Outcome.UNKNOWN,
            "partial": JobItem.Outcome.UNKNOWN,
        }.get(result, JobItem.Outcome.NOT_RUN)
        item.save(update_fields=["sw", "outcome"])
        if row is None or result == "unknown":
            continue  # unknown: the intent stays recorded; the next read settles it
        if item.action == JobItem.Action.INSTALL:
            if result == "done":
                _set(row, I.PERSONALISED)
            elif result in ("refused", "partial") and res["acknowledged"] > 0:
                _set(row, I.INSTALLED)  # on the card, not personalised: repaired at the next read
            else:
                _set(row, I.DELETED)  # nothing reached the card
        else:
            if result == "done":
                _set(row, I.DELETED)
            elif item.action == JobItem.Action.DELETE and result in ("refused", "not-run"):
                _set(row, I.PERSONALISED)


def _summary(job: Job) -> dict[str, Any]:
    items = [
        {
            "card_ap": i.card_ap.name if i.card_ap else "",
            "aid": i.aid,
            "action": i.action,
            "outcome": i.outcome,
            "user_number": i.installation.user_number
            if i.installation is not None
            and i.action == JobItem.Action.INSTALL
            and i.outcome == JobItem.Outcome.DONE
            else "",
        }
        for i in job.items.select_related("card_ap", "installation")
    ]
    return {"items": items}


def _start_change(job: Job, content: CardContent, actions: list[dict[str, Any]]) -> None:
    secrets_ = None
    if job.sealed_secrets:
        secrets_ = json.loads(get_keystore().open_sealed(str(job.pk), job.sealed_secrets))
    conv = engine.start_conversation(
        terminal_id=job.terminal_id,
        program_name="card-change",
        params={"content": content.to_json(), "actions": actions, "label": f"{job.kind}: change"},
        secrets_=secrets_,
    )
    job.attach(conv, changing=True)
    job.sealed_secrets = ""  # the conversation holds them now, and wipes them when it ends


def _end(job: Job, method: str, *args: Any) -> None:
    getattr(job, method)(*args)
    job.sealed_secrets = ""
    job.save()
    _audit(job, f"job.{job.state}", {"kind": job.kind, "card_id": job.card_id, "error": job.error_code})
    if job.state in (Job.State.FAILED, Job.State.INTERRUPTED):
        from loading import diagnosis

        diagnosis.job_failed(job)


def _card_answered(conv: CardConversation) -> str:
    """The CIN the card told in the first trip of a read that failed later (the card manager's
    GET DATA CIN answered 9000), so a failed job still names its card; "" when it did not."""
    if conv.program != "card-read" or not conv.transcript:
        return ""
    responses = conv.exchanges()[0][1]
    if len(responses) < 3 or responses[2][-2:] != b"\x90\x00":
        return ""
    try:
        return gp.parse_cin(responses[2][:-2]).hex().upper()
    except gp.GPError:
        return ""


def advance(job: Job, conv: CardConversation) -> None:
    job.add_steps(step_log(conv))
    if conv.state != CardConversation.State.FINISHED and not job.card_id:
        job.card_id = _card_answered(conv) or job.expected_card
    if conv.state in (CardConversation.State.INTERRUPTED, CardConversation.State.CANCELLED):
        for item in job.items.filter(outcome=JobItem.Outcome.PLANNED):
            item.outcome = JobItem.Outcome.UNKNOWN
            item.save(update_fields=["outcome"])
        job.error_message = str(ERROR_MESSAGES.get(conv.error_code, conv.error_code)) + " " + str(NEXT_STEP)
        _end(job, "interrupt", conv.error_code or "interrupted")
        return
    if conv.state == CardConversation.State.FAILED:
        code = conv.error_code
        message = f"{ERROR_MESSAGES.get(code, _('カード操作に失敗しました。'))} {NEXT_STEP}"
        _end(job, "fail", code, message, _summary(job))
        return
    outcome = conv.outcome or {}
    if conv.program == "card-read":
        content = CardContent.from_json(outcome)
        job.content, job.card_id = content.to_json(), content.cin
        if Job.objects.filter(card_id=content.cin, state__in=Job.ACTIVE_STATES).exclude(pk=job.pk).exists():
            _end(
                job,
                "refuse",
                "card_busy",
                str(_("このカードは別の端末で操作中です。終わってから操作してください。")),
            )
            return
        if job.expected_card and job.expected_card != content.cin:
            _end(
                job,
                "refuse",
                "card_changed",
                str(_("読み取ったカードと別のカードがかざされています。読み取りからやり直してください。")),
            )
            return
        if job.kind == Job.Kind.READ:
            repairs = reconcile(job, content)
        else:
            # The listing comes from the read the operator chose from; the card's own checks
            # (AID in use, 6A84, a moved session counter) catch anything that changed since.
            preview = CardContent.from_json(job.request["preview"])
            for name, area in content.areas.items():
                area.instances = dict(preview.areas[name].instances)
            repairs = []
        actions: list[dict[str, Any]] = []
        if job.kind != Job.Kind.READ:
            try:
                actions = _plan(job, content)
            except rules.JobRefused as refused:
                if repairs:  # repair the card anyway; the job is refused after
                    job.request = {**job.request, "refused": [refused.code, str(refused)]}
                else:
                    _end(job, "refuse", refused.code, str(refused))
                    return
        if repairs or actions:
            _start_change(job, content, repairs + actions)
            job.save()
            return
        _end(job, "succeed", {"content": content.to_json(), **_summary(job)})
        return
    _apply_outcome(job, outcome)
    error = outcome.get("error", "")
    if error:
        message = f"{ERROR_MESSAGES.get(error, _('カード操作に失敗しました。'))} {NEXT_STEP}"
        _end(job, "fail", error, message, _summary(job))
    elif "refused" in job.request:
        code, message = job.request["refused"]
        _end(job, "refuse", code, message)
    else:
        _end(job, "succeed", _summary(job))


@receiver(conversation_ended)
def _on_ended(sender: Any, conversation: CardConversation, **kwargs: Any) -> None:
    job = Job.objects.select_for_update().filter(conversation=conversation).first()
    if job is None or not job.is_active:
        return
    try:
        with transaction.atomic():
            advance(job, conversation)
    except Exception:
        log.exception("card job %s could not advance", job.pk)
        job.refresh_from_db()
        job.error_message = str(ERROR_MESSAGES["internal-error"]) + " " + str(NEXT_STEP)
        _end(job, "fail", "internal-error", job.error_message)


@receiver(conversation_progressed)
def _on_progressed(sender: Any, conversation: CardConversation, **kwargs: Any) -> None:
    Job.objects.filter(conversation=conversation).update(step_label=conversation.step_label)
