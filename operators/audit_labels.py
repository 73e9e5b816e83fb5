"""Readable names for audit log action codes, so auditors read 「パスワード誤り」 rather than
`auth.password_failed`. Codes stay the stored, searchable key; labels are only for display."""
from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

LABELS: dict[str, Promise] = {
    "auth.sign_in": _("サインイン"),
    "auth.sign_out": _("サインアウト"),
    "auth.password_ok": _("パスワード確認"),
    "auth.password_failed": _("パスワード誤り"),
    "auth.otp_failed": _("ワンタイムコード誤り"),
    "auth.otp_enrolled": _("認証アプリ登録"),
    "auth.lockout": _("ロックアウト"),
    "auth.locked_attempt": _("ロック中のサインイン試行"),
    "auth.session_expired": _("セッション期限切れ"),
    "auth.unverified_session": _("二要素未確認のアクセス"),
    "auth.reauth": _("再認証"),
    "auth.reauth_failed": _("再認証の失敗"),
    "auth.password_changed": _("パスワード変更"),
    "auth.password_change_failed": _("パスワード変更時の現在のパスワード誤り"),
    "auth.password_change_required": _("初期パスワードの変更要求"),
    "auth.otp_throttled": _("待機時間中のコード入力"),
    "auth.backup_codes_regenerated": _("バックアップコード再発行"),
    "security.csrf_failure": _("不正な送信（CSRF）"),
    "permission.denied": _("権限のない操作"),
    "operator.create": _("操作者の追加"),
    "operator.update": _("操作者の変更"),
    "operator.role": _("役割の変更"),
    "operator.permission_change": _("権限の変更"),
    "operator.reset_password": _("パスワード再設定"),
    "operator.reset_otp": _("認証アプリの再設定"),
    "scope.change": _("操作可能範囲の変更"),
    "terminal.create": _("端末の登録"),
    "terminal.update": _("端末の変更"),
    "terminal.credential": _("端末資格情報の操作"),
    "terminal.credential_issue": _("端末資格情報の発行"),
    "terminal.credential_rotate": _("端末資格情報の更新"),
    "terminal.credential_revoke": _("端末資格情報の失効"),
    "roster.export": _("名簿の出力"),
    "relay.auth_failed": _("端末エージェントの認証失敗"),
    "relay.refused": _("端末エージェントの不正な送信"),
    "relay.take_over": _("端末エージェントの引き継ぎ"),
    "audit.export": _("監査ログの出力"),
    "provider.status": _("提供者の状態変更"),
    "card_ap.requested": _("カードAP登録依頼"),
    "card_ap.approved": _("カードAP承認"),
    "card_ap.rejected": _("カードAP却下"),
    "card_ap.retired": _("カードAP廃止"),
    "card_ap.key_rotated": _("カードAP鍵の更新"),
    "card_ap.key_package_exported": _("アクセス鍵パッケージの出力"),
    "provider.package_key_registered": _("鍵パッケージ受領用公開鍵の登録"),
    "card_ap.share_added": _("共同利用の追加"),
    "card_ap.share_ended": _("共同利用の終了"),
    "preset.created": _("自動搭載セットの作成"),
    "preset.updated": _("自動搭載セットの変更"),
    "preset.deleted": _("自動搭載セットの削除"),
    "maintenance.scheduled": _("計画保守の登録"),
    "maintenance.cancelled": _("計画保守の取消"),
    "failure.detected": _("障害の検知"),
    "diagnosis.started": _("障害診断の開始"),
    "diagnosis.completed": _("障害診断の結果"),
    "apikey.issue": _("APIキーの発行"),
    "apikey.revoke": _("APIキーの失効"),
    "job.started": _("カード操作開始"),
    "job.refused": _("カード操作拒否"),
    "job.succeeded": _("カード操作完了"),
    "job.failed": _("カード操作失敗"),
    "job.interrupted": _("カード操作中断"),
    "installation.reconciled": _("搭載記録の照合・修正"),
    "job.history_export": _("カード操作履歴の出力"),
}

# Codes built at run time: admin.<model>.<add|change|delete>, revocation.feed_<state>.
_PREFIXES: dict[str, Promise] = {
    "admin.": _("管理画面での変更"),
    "revocation.feed_": _("失効情報フィードの取込"),
}


def action_label(code: str) -> str:
    if code in LABELS:
        return str(LABELS[code])
    for prefix, label in _PREFIXES.items():
        if code.startswith(prefix):
            return str(label)
    return code
