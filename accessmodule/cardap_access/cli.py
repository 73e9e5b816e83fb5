"""``cardap-read``: the access module's command line.

    cardap-read readers
    cardap-read --package FILE list
    cardap-read --package FILE read AID [--pin-stdin] [--json]

The package's passphrase comes from $CARDAP_KEY_PASSPHRASE, --passphrase-file or a prompt; a
package encrypted to a public key is opened with --private-key (PKCS#8 PEM; its password, if any,
from $CARDAP_PRIVATE_KEY_PASSWORD). The holder's PIN comes from stdin (--pin-stdin) or a prompt,
never from the command line (other users could see it in the process list)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from cardap_access import errors, pcsc
from cardap_access.package import load_private_key, open_package
from cardap_access.reader import CardAPReader

MESSAGES = {
    "ja": {
        "card": "カードあり",
        "empty": "カードなし",
        "no_package": "鍵パッケージを --package または CARDAP_KEY_PACKAGE で指定してください。",
        "passphrase": "鍵パッケージのパスフレーズ: ",
        "pin": "暗証番号: ",
        "none": "この鍵パッケージのカードAPはカードにありません。",
        "user_number": "利用者番号",
        "ready": "読取可",
        "not_personalised": "個別化未完了",
        "locked": "ロック",
        "error": "エラー",
    },
    "en": {
        "card": "card present",
        "empty": "no card",
        "no_package": "give the key package with --package or CARDAP_KEY_PACKAGE.",
        "passphrase": "Key package passphrase: ",
        "pin": "PIN: ",
        "none": "None of this key package's card APs is on the card.",
        "user_number": "user number",
        "ready": "ready",
        "not_personalised": "not personalised",
        "locked": "locked",
        "error": "error",
    },
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cardap-read", description="Read card APs from a My Number Card.")
    p.add_argument("--lang", choices=["ja", "en"], help="message language (default: the locale)")
    p.add_argument("--reader", help="reader name (or a unique part of it); default: the first with a card")
    p.add_argument("--package", help="access key package file (default: $CARDAP_KEY_PACKAGE)")
    p.add_argument("--passphrase-file", help="file holding the package passphrase")
    p.add_argument("--private-key", help="X25519 private key (PEM) for a package encrypted to a public key")
    p.add_argument("--provider", help="refuse a package not issued to this provider id")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("readers", help="list PC/SC readers")
    ls = sub.add_parser("list", help="card APs of the key package present on the card")
    ls.add_argument("--json", action="store_true")
    rd = sub.add_parser("read", help="read one card AP")
    rd.add_argument("aid")
    rd.add_argument("--pin-stdin", action="store_true", help="read the holder's PIN from stdin")
    rd.add_argument("--json", action="store_true")
    return p


def _package(args: argparse.Namespace, text: dict[str, str]):  # type: ignore[no-untyped-def]
    path = args.package or os.environ.get("CARDAP_KEY_PACKAGE")
    if not path:
        raise SystemExit(text["no_package"])
    if args.private_key:
        key = load_private_key(
            Path(args.private_key).read_bytes(), os.environ.get("CARDAP_PRIVATE_KEY_PASSWORD")
        )
        return open_package(path, private_key=key, expected_provider=args.provider)
    if args.passphrase_file:
        passphrase = Path(args.passphrase_file).read_text(encoding="utf-8").rstrip("\r\n")
    elif "CARDAP_KEY_PASSPHRASE" in os.environ:
        passphrase = os.environ["CARDAP_KEY_PASSPHRASE"]
    else:
        passphrase = getpass.getpass(text["passphrase"])
    return open_package(path, passphrase=passphrase, expected_provider=args.provider)


def _pin(args: argparse.Namespace, text: dict[str, str]) -> str | None:
    if args.pin_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return getpass.getpass(text["pin"])
    return None


def run(args: argparse.Namespace, lang: str) -> int:
    text = MESSAGES[lang]
    if args.command == "readers":
        for name in pcsc.list_readers():
            print(f"{name}\t{text['card'] if pcsc.card_present(name) else text['empty']}")
        return 0
    package = _package(args, text)
    with pcsc.connected(args.reader) as card:
        reader = CardAPReader(card, package)
        if args.command == "list":
            found = reader.present()
            if args.json:
                rows = [
                    {"aid": f.access.aid, "name": f.access.name, "type": f.access.ap_type, "state": f.state}
                    for f in found
                ]
                print(json.dumps(rows, ensure_ascii=False))
            elif not found:
                print(text["none"])
            for f in [] if args.json else found:
                print(f"{f.access.aid}\t{f.access.ap_type}\t{text[f.state]}\t{f.access.name}")
            return 0
        entry = package.get(args.aid)
        needs_holder_pin = entry is not None and entry.pin_source == "holder"
        result = reader.read(args.aid, _pin(args, text) if needs_holder_pin else None)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
        return 0
    print(f"{result.aid}\t{result.ap_type}\t{result.name}")
    print(f"{text['user_number']}: {result.user_number}")
    for file in result.files:
        item = file.to_json()
        body = item.get("data") or " ".join(item.get("records", []))
        print(f"  {item['fid']} {item['structure']}: {body}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    lang = args.lang or errors.language()
    try:
        return run(args, lang)
    except errors.AccessError as e:
        print(f"{MESSAGES[lang]['error']} [{e.code}]: {e.message(lang)}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
