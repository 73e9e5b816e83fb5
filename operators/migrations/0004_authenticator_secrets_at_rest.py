"""Seal the TOTP keys and hash the backup codes stored before operators.otp_secrets existed."""

from django.db import migrations

from operators import otp_secrets


def protect(apps, schema_editor):
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for device in TOTPDevice.objects.all().iterator():
        if device.key and not otp_secrets.is_sealed(device.key):
            device.key = otp_secrets.seal_totp_key(device.key, user_id=device.user_id)
            device.save(update_fields=["key"])
    for token in StaticToken.objects.all().iterator():
        # django-otp's own codes are 8 characters; a stored hash has 16.
        if len(token.token) != 16:
            token.token = otp_secrets.hash_backup_code(token.token)
            token.save(update_fields=["token"])


def unseal(apps, schema_editor):
    """Back to django-otp's plain TOTP keys (backup codes stay hashed: operators regenerate them)."""
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    for device in TOTPDevice.objects.all().iterator():
        if otp_secrets.is_sealed(device.key):
            device.key = otp_secrets.open_totp_key(device.key, user_id=device.user_id)
            device.save(update_fields=["key"])


class Migration(migrations.Migration):
    dependencies = [
        ("operators", "0003_must_change_password"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(protect, unseal)]
