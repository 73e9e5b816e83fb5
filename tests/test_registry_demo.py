"""Demo data: live providers of each kind with approved card APs of every type; idempotent."""

import io

import pytest
from django.core.management import call_command

from cardap.models import AutoLoadPreset, CardAP, MaintenanceWindow, Provider


@pytest.mark.django_db
def test_demo_registry_data_is_complete_and_idempotent():
    call_command("load_demo", stdout=io.StringIO())
    approved = CardAP.objects.filter(status="approved")
    assert {ap.type for ap in approved} == {"A", "C", "D", "custom"}
    assert all(ap.aid and ap.sha256 and ap.memory_cost for ap in approved)
    assert set(Provider.objects.filter(status="live").values_list("kind", flat=True)) == set(
        Provider.Kind.values
    )
    assert all(p.legal_basis_kind in p.allowed_legal_bases() for p in Provider.objects.all())
    counts = (CardAP.objects.count(), AutoLoadPreset.objects.count(), MaintenanceWindow.objects.count())
    assert counts[1] == 1 and counts[2] == 1
    call_command("load_demo", stdout=io.StringIO())
    assert (
        CardAP.objects.count(),
        AutoLoadPreset.objects.count(),
        MaintenanceWindow.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_demo_data_is_refused_outside_demo_mode(settings):
    from django.core.management.base import CommandError

    from operators.models import Operator, Terminal

    settings.DEMO = False
    with pytest.raises(CommandError, match="CARDAP_DEMO=1"):
        call_command("load_demo", stdout=io.StringIO())
    assert not Operator.objects.exists() and not Terminal.objects.exists()
