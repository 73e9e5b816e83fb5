"""The access module reads every kind of card AP through pyscard + pcscd + vpcd from a virtual
card carrying APs the service manufactured, and reports every failure as its own exception."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from cardap import services
from cardap_access import CardAPReader, errors, open_package, pcsc
from cardap_access.reader import BinaryFile, RecordFile
from tests.accessmodule.conftest import HOLDER_PIN, PASSPHRASE, approve, export
from tests.pcsc.readers import insert_card, list_readers
from vcard import VirtualCard

pytestmark = [pytest.mark.pcsc, pytest.mark.django_db]


def reader_for(loaded, package):
    card = pcsc.connect(loaded.reader)
    return card, CardAPReader(card, package)


def expect_content(loaded, kind, result):
    for fid, body in loaded.data[kind].items():
        got = result.file(fid)
        if isinstance(body, bytes):
            assert isinstance(got, BinaryFile) and got.data == body
        else:
            assert isinstance(got, RecordFile) and list(got.records) == body


def test_reads_every_type(loaded_card, city_package):
    card, reader = reader_for(loaded_card, city_package)
    with card:
        aps = loaded_card.aps
        library = reader.read(aps["C"].aid)  # type C: no PIN, no authentication
        gate = reader.read(aps["A"].aid, HOLDER_PIN)  # type A: holder's PIN + mutual authentication
        health = reader.read(aps["D"].aid)  # type D: the system-fixed PIN from the package, SM
        custom = reader.read(aps["X"].aid, HOLDER_PIN)  # custom: by its description
    for kind, result in (("C", library), ("A", gate), ("D", health), ("X", custom)):
        assert result.user_number == loaded_card.user_numbers[kind]
        assert result.aid == aps[kind].aid
        expect_content(loaded_card, kind, result)
    assert health.ap_type == "D" and len(health.file(2).data) == 600  # several secure reads
    assert custom.ap_type == "X"


def test_list_shows_only_the_package_aps_on_the_card(world, loaded_card):
    missing = approve(world, world.city, world.city_admin, "未搭載", type="C")
    aps = [*loaded_card.aps.values(), missing]
    package = open_package(
        export(world, world.city, world.city_admin, aps, passphrase=PASSPHRASE), passphrase=PASSPHRASE
    )
    card, reader = reader_for(loaded_card, package)
    with card:
        present = {p.access.aid: p.state for p in reader.present()}
        assert missing.aid not in present
        assert present[loaded_card.aps["E"].aid] == "not_personalised"
        assert {present[loaded_card.aps[k].aid] for k in "CADX"} == {"ready"}
        with pytest.raises(errors.APNotOnCardError):
            reader.read(missing.aid)
        with pytest.raises(errors.APNotPersonalisedError):
            reader.read(loaded_card.aps["E"].aid)


def test_wrong_pin_down_to_blocked(loaded_card, city_package):
    aid = loaded_card.aps["A"].aid
    card, reader = reader_for(loaded_card, city_package)
    with card:
        with pytest.raises(errors.PinFormatError):
            reader.read(aid, "12")  # refused before the card: no try used
        with pytest.raises(errors.PinRequiredError):
            reader.read(aid)
        with pytest.raises(errors.WrongPinError) as first:
            reader.read(aid, "9999")
        assert first.value.tries_left == 2
        with pytest.raises(errors.WrongPinError) as second:
            reader.read(aid, "9998")
        assert second.value.tries_left == 1 and "1 try left" in second.value.en
        with pytest.raises(errors.PinBlockedError):
            reader.read(aid, "9997")
        with pytest.raises(errors.PinBlockedError):
            reader.read(aid, HOLDER_PIN)  # blocked: the right PIN no longer helps
        assert reader.read(loaded_card.aps["C"].aid).user_number == loaded_card.user_numbers["C"]


def test_tearing_during_a_type_d_read(loaded_card, city_package):
    aid = loaded_card.aps["D"].aid
    card, reader = reader_for(loaded_card, city_package)
    with card:
        # SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, VERIFY, SELECT EF, READ BINARY…:
        # power goes during the second read of the 600-byte file.
        loaded_card.card.faults.tear_at = 8
        with pytest.raises(errors.CardRemovedError) as torn:
            reader.read(aid)
        assert "removed" in torn.value.en and "カード" in torn.value.ja
    # The card comes back (re-inserted after reset) whole: the same read succeeds.
    deadline = time.monotonic() + 15
    while True:
        try:
            card, reader = reader_for(loaded_card, city_package)
            break
        except errors.NoCardError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with card:
        result = reader.read(aid)
    assert result.user_number == loaded_card.user_numbers["D"]
    expect_content(loaded_card, "D", result)


def test_wrong_key_fails_mutual_authentication(world, loaded_card, city_package):
    # A key rotated after the card was loaded: the new package's key is not the card's.
    services.rotate_ap_key(card_ap=loaded_card.aps["A"], actor=world.jlis)
    rotated = open_package(
        export(world, world.city, world.city_admin, [loaded_card.aps["A"]], passphrase=PASSPHRASE),
        passphrase=PASSPHRASE,
    )
    card, reader = reader_for(loaded_card, rotated)
    with card:
        with pytest.raises(errors.AuthenticationFailedError):
            reader.read(loaded_card.aps["A"].aid, HOLDER_PIN)
        # the PIN was never presented: the old package still reads with all tries left
        assert CardAPReader(card, city_package).read(loaded_card.aps["A"].aid, HOLDER_PIN).user_number


class FlipReadBinary:
    """A reader path that alters the data of READ BINARY answers (a broken or attacked link)."""

    def __init__(self, card):
        self.card, self.atr = card, card.atr

    def transmit(self, apdu: bytes) -> bytes:
        response = self.card.transmit(apdu)
        if apdu[1] == 0xB0 and len(response) > 2:
            response = bytes([response[0] ^ 0x01]) + response[1:]
        return response


def test_broken_secure_messaging_is_reported(loaded_card, city_package):
    with pcsc.connected(loaded_card.reader) as card:
        reader = CardAPReader(FlipReadBinary(card), city_package)
        with pytest.raises(errors.SecureMessagingError):
            reader.read(loaded_card.aps["D"].aid)  # R-MAC does not verify
        assert reader.read(loaded_card.aps["C"].aid).user_number  # type C has no MAC to check…
        changed = reader.read(loaded_card.aps["C"].aid).file(1)
        assert changed.data != loaded_card.data["C"][1]  # …which is why C holds nothing secret


def test_another_providers_package_is_refused(world, loaded_card):
    shop_ap = approve(world, world.shop, world.shop_admin, "ポイントカード", type="C")
    data = export(world, world.shop, world.shop_admin, [shop_ap], passphrase=PASSPHRASE)
    with pytest.raises(errors.WrongProviderError):
        open_package(data, passphrase=PASSPHRASE, expected_provider=str(world.city.pk))
    shop_package = open_package(data, passphrase=PASSPHRASE)
    card, reader = reader_for(loaded_card, shop_package)
    with card:
        assert reader.present() == []
        with pytest.raises(errors.APNotInPackageError):
            reader.read(loaded_card.aps["A"].aid, HOLDER_PIN)


def test_pin_and_key_never_logged(loaded_card, city_package, caplog):
    caplog.set_level(logging.DEBUG)
    ap = city_package.get(loaded_card.aps["A"].aid)
    card, reader = reader_for(loaded_card, city_package)
    with card:
        reader.read(ap.aid, HOLDER_PIN)
        with pytest.raises(errors.WrongPinError) as wrong:
            reader.read(ap.aid, "98765")
    assert "VERIFY" in caplog.text  # the steps are logged…
    for secret in (
        HOLDER_PIN,
        "98765",
        ap.key.hex(),
        ap.key.hex().upper(),
        city_package.get(loaded_card.aps["D"].aid).system_pin,
    ):
        assert secret not in caplog.text  # …never the PIN or key
        assert secret not in str(wrong.value)
    assert HOLDER_PIN not in repr(ap) and ap.key.hex() not in repr(ap)


def test_no_reader_no_card_not_a_my_number_card(loaded_card, city_package):
    with pytest.raises(errors.NoReaderError):
        pcsc.connect("No Such Reader 99")
    empty = [r for r in list_readers() if r.startswith("Virtual PCD") and not pcsc.card_present(r)]
    if empty:
        with pytest.raises(errors.NoCardError):
            pcsc.connect(empty[0])
    other = insert_card(OtherCard())  # some other smart card
    try:
        with pcsc.connected(other.reader) as card, pytest.raises(errors.NotMyNumberCardError):
            CardAPReader(card, city_package).read(loaded_card.aps["C"].aid)
    finally:
        other.close()


class OtherCard(VirtualCard):
    """A smart card that is not a My Number Card: another ATR, no security domains."""

    ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

    def process(self, apdu: bytes) -> bytes:
        return bytes.fromhex("6A82")


def test_package_key_with_a_copy_of_the_entry_cannot_change_its_type(loaded_card, city_package):
    """A package whose description was swapped (here: type D's for type C's) does not relax
    the card's rules: the card still demands authentication and answers 6982."""
    entry = city_package.get(loaded_card.aps["D"].aid)
    relaxed = dataclasses.replace(entry, description=city_package.get(loaded_card.aps["C"].aid).description)
    package = dataclasses.replace(city_package, aps=(relaxed,))
    card, reader = reader_for(loaded_card, package)
    with card, pytest.raises(errors.CardReadError) as refused:
        reader.read(entry.aid)
    assert refused.value.sw == 0x6982
