"""The custom card AP input file (独自カードAP, R3.3): parse and validate, with line numbers.

The format is documented in docs/custom-card-ap.md. Files may be YAML or JSON. Both are read
through PyYAML's composer, which keeps the line of every node (JSON is read by `json` first only
to report its syntax errors precisely: YAML's messages about JSON are confusing). Every problem is
reported, not just the first, as "line N: path: message".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from django.utils.translation import gettext as _

from cardap import usernumber
from gpcard.apdesc import PIN_LENGTH_MAX, PIN_LENGTH_MIN, PIN_RETRY_MAX, PIN_RETRY_MIN

RULES = {
    "free": 0x00,
    "pin": 0x01,
    "pin+mutual": 0x02,
    "pin+mutual+sm": 0x03,
    "personalisation": 0x0F,
    "never": 0xFF,
}
PIN_RULES = {0x01, 0x02, 0x03}
MUTUAL_AUTH_RULES = {0x02, 0x03}
MAX_FILES = 16
MAX_BINARY_SIZE = 32767
MAX_RECORD_COUNT = 254
MAX_RECORD_LENGTH = 255
RESERVED_FIDS = {0x3F00, 0x3FFF, 0xFFFF}
MAX_INPUT_BYTES = 64 * 1024


@dataclass(frozen=True)
class FileSpec:
    fid: int
    structure: str  # "binary" | "records"
    size: int | None
    record_count: int | None
    record_length: int | None
    read: int
    update: int

    @property
    def data_size(self) -> int:
        if self.structure == "binary":
            return self.size or 0
        return (self.record_count or 0) * (self.record_length or 0)


@dataclass(frozen=True)
class PinSpec:
    source: str  # "holder" | "system"
    min_length: int
    max_length: int
    retry_limit: int


@dataclass(frozen=True)
class UserNumberSpec:
    fid: int
    record: int
    offset: int
    length: int
    charset: str  # "digits" | "alphanumeric"


@dataclass(frozen=True)
class CustomAPSpec:
    name: str
    pin: PinSpec | None
    files: tuple[FileSpec, ...]
    user_number: UserNumberSpec

    @property
    def needs_mutual_auth(self) -> bool:
        return any(f.read in MUTUAL_AUTH_RULES or f.update in MUTUAL_AUTH_RULES for f in self.files)


@dataclass(frozen=True)
class Issue:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}" if self.path else self.message
        return _("%(line)d行目: %(path)s: %(message)s") % {
            "line": self.line,
            "path": self.path or "-",
            "message": self.message,
        }


class InputFileError(ValueError):
    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


_constructor = yaml.constructor.SafeConstructor()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def err(self, node: yaml.Node | None, path: str, message: str) -> None:
        self.issues.append(Issue(_line(node) if node is not None else None, path, message))

    def mapping(self, node: yaml.Node, path: str, allowed: set[str]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, path, _("キーと値の組（マッピング）が必要です。"))
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            sub = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key not in allowed:
                self.err(
                    key_node,
                    sub,
                    _("不明なキーです（使用可能: %(keys)s）。") % {"keys": ", ".join(sorted(allowed))},
                )
                continue
            if key in out:
                self.err(key_node, sub, _("キーが重複しています。"))
                continue
            out[key] = value_node
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # a mapping or list where a scalar belongs: callers report it
        return _constructor.construct_object(node)

    def integer(self, node: yaml.Node, path: str, low: int, high: int) -> int | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(node, path, _("整数が必要です。"))
            return None
        if value < low:
            self.err(node, path, _("%(value)d は下限 %(low)d 未満です。") % {"value": value, "low": low})
            return None
        if value > high:
            self.err(
                node, path, _("%(value)d は上限 %(high)d を超えています。") % {"value": value, "high": high}
            )
            return None
        return value

    def choice(self, node: yaml.Node, path: str, choices: list[str]) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or value not in choices:
            self.err(
                node,
                path,
                _("%(value)s は使用できません（使用可能: %(choices)s）。")
                % {"value": _show(value), "choices": ", ".join(choices)},
            )
            return None
        return value

    def fid(self, node: yaml.Node, path: str) -> int | None:
        value = self.scalar(node)
        if not (
            isinstance(node, yaml.ScalarNode)
            and node.tag == "tag:yaml.org,2002:str"
            and isinstance(value, str)
        ):
            self.err(node, path, _('FIDは引用符で囲んだ4桁の16進数で書きます（例: "0001"）。'))
            return None
        try:
            fid = int(value, 16) if len(value) == 4 else -1
        except ValueError:
            fid = -1
        if fid < 0:
            self.err(node, path, _('FIDは4桁の16進数です（例: "0001"）: %(value)s') % {"value": _show(value)})
            return None
        if fid in RESERVED_FIDS:
            self.err(node, path, _("FID %(value)s は予約済みで使用できません。") % {"value": value.upper()})
            return None
        return fid

    def required(
        self, fields: dict[str, yaml.Node], key: str, parent: yaml.Node, path: str
    ) -> yaml.Node | None:
        node = fields.get(key)
        if node is None:
            self.err(parent, f"{path}.{key}" if path else key, _("必須の項目がありません。"))
        return node


def _show(value: Any) -> str:
    if isinstance(value, yaml.Node):
        return _("（入れ子の値）")
    return json.dumps(value, ensure_ascii=False, default=str)


# Parsers recurse once per nesting level: a file of thousands of brackets exhausts the stack
# (RecursionError), which is reported like any other mistake in the file.
def parse(text: str, *, fmt: str) -> CustomAPSpec:
    """Parse and validate an input file; raise InputFileError listing every problem."""
    if fmt not in ("yaml", "json"):
        raise ValueError(f"unknown format {fmt!r}")
    if len(text.encode()) > MAX_INPUT_BYTES:
        raise InputFileError([Issue(None, "", _("入力ファイルが大きすぎます（上限 64KiB）。"))])
    too_deep = InputFileError([Issue(None, "", _("入れ子が深すぎます。"))])
    if fmt == "json":
        try:
            json.loads(text)
        except RecursionError:
            raise too_deep from None
        except json.JSONDecodeError as exc:
            raise InputFileError(
                [
                    Issue(
                        exc.lineno,
                        "",
                        _("JSONの構文誤り（%(col)d文字目）: %(msg)s") % {"col": exc.colno, "msg": exc.msg},
                    )
                ]
            ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise too_deep from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InputFileError([Issue(line, "", _("YAMLの構文誤り: %(msg)s") % {"msg": exc.problem})]) from None
    except yaml.YAMLError as exc:
        raise InputFileError([Issue(None, "", _("YAMLの構文誤り: %(msg)s") % {"msg": exc})]) from None
    if root is None:
        raise InputFileError([Issue(None, "", _("入力ファイルが空です。"))])
    reader = _Reader()
    spec = _read_root(reader, root)
    if reader.issues or spec is None:
        raise InputFileError(sorted(reader.issues, key=lambda i: (i.line or 0, i.path)))
    return spec


def _read_root(r: _Reader, root: yaml.Node) -> CustomAPSpec | None:
    top = r.mapping(root, "", {"format", "name", "description", "pin", "files", "user_number"})
    if top is None:
        return None
    fmt_node = r.required(top, "format", root, "")
    if fmt_node is not None and r.scalar(fmt_node) != 1:
        r.err(fmt_node, "format", _("対応している形式の版は 1 です。"))
    name = ""
    if "name" in top:
        value = r.scalar(top["name"])
        if not isinstance(value, str) or not 1 <= len(value) <= 200:
            r.err(top["name"], "name", _("1〜200文字の文字列が必要です。"))
        else:
            name = value
    files = _read_files(r, top, root)
    pin = _read_pin(r, top["pin"]) if "pin" in top else None
    if files is not None:
        needing = [i for i, (f, _node) in enumerate(files) if f.read in PIN_RULES or f.update in PIN_RULES]
        if needing and "pin" not in top:
            f_index = needing[0]
            r.err(
                files[f_index][1],
                f"files[{f_index}]",
                _("暗証番号が必要なアクセス条件ですが、pin がありません。"),
            )
        if not needing and "pin" in top:
            r.err(top["pin"], "pin", _("暗証番号を必要とするファイルがありません。pin を削除してください。"))
    user_node = r.required(top, "user_number", root, "")
    user = _read_user_number(r, user_node, [f for f, _n in files] if files else []) if user_node else None
    if r.issues or files is None or user is None:
        return None
    return CustomAPSpec(name=name, pin=pin, files=tuple(f for f, _n in files), user_number=user)


def _read_files(
    r: _Reader, top: dict[str, yaml.Node], root: yaml.Node
) -> list[tuple[FileSpec, yaml.Node]] | None:
    node = r.required(top, "files", root, "")
    if node is None:
        return None
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        r.err(node, "files", _("1個以上のファイルのリストが必要です。"))
        return None
    if len(node.value) > MAX_FILES:
        r.err(
            node,
            "files",
            _("ファイルは%(max)d個までです（%(n)d個）。") % {"max": MAX_FILES, "n": len(node.value)},
        )
    out: list[tuple[FileSpec, yaml.Node]] = []
    seen: dict[int, int] = {}
    ok = True
    for i, fnode in enumerate(node.value):
        path = f"files[{i}]"
        fields = r.mapping(fnode, path, {"fid", "structure", "size", "records", "read", "update"})
        if fields is None:
            ok = False
            continue
        before = len(r.issues)
        fid_node = r.required(fields, "fid", fnode, path)
        fid = r.fid(fid_node, f"{path}.fid") if fid_node is not None else None
        if fid is not None and fid in seen:
            r.err(
                fid_node, f"{path}.fid", _("FIDが files[%(other)d] と重複しています。") % {"other": seen[fid]}
            )
        elif fid is not None:
            seen[fid] = i
        s_node = r.required(fields, "structure", fnode, path)
        structure = r.choice(s_node, f"{path}.structure", ["binary", "records"]) if s_node else None
        size = count = length = None
        if structure == "binary":
            if "records" in fields:
                r.err(
                    fields["records"],
                    f"{path}.records",
                    _("バイナリファイルには records ではなく size を書きます。"),
                )
            size_node = r.required(fields, "size", fnode, path)
            if size_node is not None:
                size = r.integer(size_node, f"{path}.size", 1, MAX_BINARY_SIZE)
        elif structure == "records":
            if "size" in fields:
                r.err(
                    fields["size"],
                    f"{path}.size",
                    _("レコードファイルには size ではなく records を書きます。"),
                )
            rec_node = r.required(fields, "records", fnode, path)
            rec = (
                r.mapping(rec_node, f"{path}.records", {"count", "length"}) if rec_node is not None else None
            )
            if rec is not None and rec_node is not None:
                c_node = r.required(rec, "count", rec_node, f"{path}.records")
                l_node = r.required(rec, "length", rec_node, f"{path}.records")
                count = r.integer(c_node, f"{path}.records.count", 1, MAX_RECORD_COUNT) if c_node else None
                length = r.integer(l_node, f"{path}.records.length", 1, MAX_RECORD_LENGTH) if l_node else None
        rules = {}
        for key in ("read", "update"):
            rule_node = r.required(fields, key, fnode, path)
            name = r.choice(rule_node, f"{path}.{key}", list(RULES)) if rule_node is not None else None
            rules[key] = RULES[name] if name is not None else None
        if len(r.issues) != before or fid is None or structure is None:
            ok = False
            continue
        assert rules["read"] is not None and rules["update"] is not None
        out.append((FileSpec(fid, structure, size, count, length, rules["read"], rules["update"]), fnode))
    return out if ok else None


def _read_pin(r: _Reader, node: yaml.Node) -> PinSpec | None:
    fields = r.mapping(node, "pin", {"source", "min_length", "max_length", "retry_limit"})
    if fields is None:
        return None
    s_node = r.required(fields, "source", node, "pin")
    source = r.choice(s_node, "pin.source", ["holder", "system"]) if s_node else None
    lo_node = r.required(fields, "min_length", node, "pin")
    hi_node = r.required(fields, "max_length", node, "pin")
    lo = r.integer(lo_node, "pin.min_length", PIN_LENGTH_MIN, PIN_LENGTH_MAX) if lo_node else None
    hi = r.integer(hi_node, "pin.max_length", PIN_LENGTH_MIN, PIN_LENGTH_MAX) if hi_node else None
    retry_node = fields.get("retry_limit")
    retry: int | None = 3
    if retry_node is not None:
        retry = r.integer(retry_node, "pin.retry_limit", PIN_RETRY_MIN, PIN_RETRY_MAX)
    if lo is not None and hi is not None and hi < lo:
        r.err(
            hi_node,
            "pin.max_length",
            _("最大桁数 %(hi)d が最小桁数 %(lo)d より小さくなっています。") % {"hi": hi, "lo": lo},
        )
        return None
    if source is None or lo is None or hi is None or retry is None:
        return None
    return PinSpec(source, lo, hi, retry)


def _read_user_number(r: _Reader, node: yaml.Node, files: list[FileSpec]) -> UserNumberSpec | None:
    fields = r.mapping(node, "user_number", {"fid", "record", "offset", "length", "charset"})
    if fields is None:
        return None
    before = len(r.issues)
    fid_node = r.required(fields, "fid", node, "user_number")
    fid = r.fid(fid_node, "user_number.fid") if fid_node is not None else None
    record = (
        r.integer(fields["record"], "user_number.record", 0, MAX_RECORD_COUNT) if "record" in fields else 0
    )
    offset = (
        r.integer(fields["offset"], "user_number.offset", 0, MAX_BINARY_SIZE) if "offset" in fields else 0
    )
    l_node = r.required(fields, "length", node, "user_number")
    length = r.integer(l_node, "user_number.length", 1, usernumber.MAX_LENGTH) if l_node else None
    c_node = r.required(fields, "charset", node, "user_number")
    charset = r.choice(c_node, "user_number.charset", list(usernumber.CHARSETS)) if c_node else None
    if len(r.issues) != before or None in (fid, record, offset, length, charset):
        return None
    assert fid is not None and record is not None and offset is not None and length is not None and charset
    if length == 11 and charset == usernumber.DIGITS:
        r.err(l_node, "user_number.length", _("11桁の数字は住民票コードと同じ形式のため使用できません。"))
        return None
    target = next((f for f in files if f.fid == fid), None)
    if target is None:
        if files:
            r.err(
                fid_node,
                "user_number.fid",
                _("FID %(fid)04X のファイルが files にありません。") % {"fid": fid},
            )
        return None
    if target.structure == "binary":
        if record != 0:
            r.err(
                fields.get("record"), "user_number.record", _("バイナリファイルではレコード番号は 0 です。")
            )
            return None
        limit = target.size or 0
    else:
        if not 1 <= record <= (target.record_count or 0):
            r.err(
                fields.get("record", node),
                "user_number.record",
                _("レコード番号は 1〜%(n)d です。") % {"n": target.record_count or 0},
            )
            return None
        limit = target.record_length or 0
    if offset + length > limit:
        r.err(
            l_node,
            "user_number.length",
            _("位置 %(offset)d から %(length)d バイトはファイルの大きさ %(limit)d を超えます。")
            % {"offset": offset, "length": length, "limit": limit},
        )
        return None
    return UserNumberSpec(fid, record, offset, length, charset)
