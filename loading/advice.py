"""What each fault class means for the operator and what to do next (R5), and status words
explained in words (gpcard.sw), never shown bare alone."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from gpcard.diagnosis import FaultClass
from gpcard.sw import describe


class Action:
    """The next steps, as stable codes (the page shows their label; tests check them)."""

    RETRY = "retry"
    REINSERT = "reinsert"
    DELETE_AND_RELOAD = "delete-and-reload"
    RECONCILE = "reconcile"
    REISSUE = "reissue"
    CONTACT_JLIS = "contact-jlis"
    CHECK_RULES = "check-rules"
    CHECK_READER = "check-reader"


ACTION_LABELS: dict[str, Promise] = {
    Action.RETRY: _("もう一度操作してください"),
    Action.REINSERT: _("カードをリーダから取り出し、差し直してください"),
    Action.DELETE_AND_RELOAD: _("そのカードAPを削除してから搭載し直してください"),
    Action.RECONCILE: _("照合処理（カードと登録内容の突き合わせ）を実行してください"),
    Action.REISSUE: _("カードの再交付のため、住所地の市区町村窓口へ案内してください"),
    Action.CONTACT_JLIS: _("この受付番号を添えて J-LIS に連絡してください"),
    Action.CHECK_RULES: _("理由を確認し、条件が整ってから操作してください"),
    Action.CHECK_READER: _("カードリーダの接続と端末の接続状況を確認してください"),
}


@dataclass(frozen=True)
class Advice:
    title: Promise
    meaning: Promise
    actions: tuple[str, ...]

    @property
    def action_labels(self) -> list[Promise]:
        return [ACTION_LABELS[a] for a in self.actions]


A = Action
ADVICE: dict[FaultClass, Advice] = {
    FaultClass.NO_READER: Advice(
        _("カードリーダが見つかりません"),
        _("端末にカードリーダが接続されていないか、認識されていません。"),
        (A.CHECK_READER, A.RETRY),
    ),
    FaultClass.NO_CARD: Advice(
        _("カードが置かれていません"),
        _("カードリーダにカードが入っていないか、正しく置かれていません。"),
        (A.REINSERT, A.RETRY),
    ),
    FaultClass.NOT_MY_NUMBER_CARD: Advice(
        _("マイナンバーカードではありません"),
        _(
            "リーダのカードはマイナンバーカードとして応答しません。別のカードが置かれていないか確認してください。"
        ),
        (A.REINSERT, A.CONTACT_JLIS),
    ),
    FaultClass.CARD_LOCKED: Advice(
        _("カードがロックまたは廃止されています"),
        _("カード全体が使用停止の状態です。この窓口では回復できません。"),
        (A.REISSUE, A.CONTACT_JLIS),
    ),
    FaultClass.AREA_LOCKED: Advice(
        _("領域またはカードAPがロックされています"),
        _("カードAPを搭載する領域（またはカードAP）がロックされており、搭載・削除ができません。"),
        (A.CONTACT_JLIS, A.REISSUE),
    ),
    FaultClass.KEYS_REJECTED: Advice(
        _("カードの鍵で認証できません"),
        _("カードとの相互認証に失敗しました。想定と異なるカードか、鍵が登録されていないカードです。"),
        (A.REINSERT, A.CONTACT_JLIS),
    ),
    FaultClass.AREA_FULL: Advice(
        _("領域の空き容量が足りません"),
        _("カードAPを搭載する領域に空きがありません。不要なカードAPを削除すると搭載できる場合があります。"),
        (A.RECONCILE, A.DELETE_AND_RELOAD),
    ),
    FaultClass.AP_HALF_INSTALLED: Advice(
        _("カードAPの搭載が途中で止まっています"),
        _("カードAPはカード上にありますが、データの設定（個別化）が終わっていません。"),
        (A.DELETE_AND_RELOAD, A.RECONCILE),
    ),
    FaultClass.AP_MISSING: Advice(
        _("カードAPがない、または登録と一致しません"),
        _("搭載済みのはずのカードAPがカードにないか、登録にないカードAPがカードにあります。"),
        (A.RECONCILE, A.DELETE_AND_RELOAD),
    ),
    FaultClass.PIN_BLOCKED: Advice(
        _("暗証番号がロックされています"),
        _("暗証番号の入力を規定回数誤ったため、このカードAPの暗証番号は使えません。"),
        (A.DELETE_AND_RELOAD, A.REISSUE),
    ),
    FaultClass.COMMUNICATION_LOST: Advice(
        _("カードとの通信が途中で切れました"),
        _(
            "コマンドの途中でカードが応答しなくなりました（カードが動いた・抜けた、電源が切れた等）。カードの内容は処理前の状態のままです。"
        ),
        (A.REINSERT, A.RETRY, A.RECONCILE),
    ),
    FaultClass.SERVER_REFUSED: Advice(
        _("サーバの規則により操作できません"),
        _(
            "操作権限、サービス時間、計画保守、本人同意、または領域の規則により、操作を受け付けませんでした。カードには問題ありません。"
        ),
        (A.CHECK_RULES,),
    ),
    FaultClass.NO_FAULT: Advice(
        _("障害は見つかりませんでした"),
        _("すべての確認項目に合格しました。もう一度操作してください。"),
        (A.RETRY, A.CONTACT_JLIS),
    ),
    FaultClass.UNCLASSIFIED: Advice(
        _("原因を特定できませんでした"),
        _("想定外の応答がありました。"),
        (A.RETRY, A.CONTACT_JLIS),
    ),
}

STEP_LABELS: dict[str, Promise] = {
    "reader": _("カードリーダの接続"),
    "card": _("カードの有無"),
    "atr": _("マイナンバーカードの応答（ATR）"),
    "card_manager": _("カード管理機能の応答"),
    "life_cycle": _("カードの状態（ロック・廃止）"),
    "area_sd": _("領域の選択とロック"),
    "scp03": _("カードの鍵による相互認証"),
    "memory": _("領域の空き容量"),
    "content": _("カードの内容と登録の照合"),
    "ap": _("カードAPの応答"),
}
AREA_LABELS: dict[str, Promise] = {"local": _("地域住民向け領域"), "extended": _("拡張利用領域")}


def advice_for(fault_class: str) -> Advice:
    try:
        return ADVICE[FaultClass(fault_class)]
    except ValueError:
        return ADVICE[FaultClass.UNCLASSIFIED]


def explain_sw(sw: str | int) -> str:
    """「6A84（メモリ容量不足）」: the status word with its meaning in the current language."""
    value = int(sw, 16) if isinstance(sw, str) else sw
    info = describe(value)
    text = info.en if (get_language() or "ja").startswith("en") else info.ja
    return f"{info.hex} ({text})" if (get_language() or "ja").startswith("en") else f"{info.hex}（{text}）"
