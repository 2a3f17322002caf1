"""The one definition of every entity and field.

Everything else is derived from this table: the store's columns (store.py), the validation
models (validate.py), the workbook's sheets and columns (workbook build), import header matching
(importer.py) and exports (export.py).  No other module lists fields by hand.

A field is declared once with:

- ``key``: the English identifier used in code, the store and the CLI;
- ``zh`` / ``en``: the column label in a Chinese / English workbook;
- ``type``: how values are normalised and checked (see ``FIELD_TYPES``);
- ``required``: a row without it is invalid;
- ``enum``: the name of the enumeration (a list kept as data in the store) the value must be in;
- ``core``: changing it needs a reason (变更原因);
- ``sensitive``: masked on export for roles that may not see it;
- ``system``: set by the store, never typed (ids, versions, timestamps);
- ``synonyms``: other header labels that mean this field when importing legacy files.

Behaviour lives elsewhere; this module is data plus a few look-ups.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import resources

#: The value types a field can have.  Each has a normaliser in validate.py.
FIELD_TYPES = (
    "id",  # an identifier the store assigns (C20240521000 1, F…)
    "ref",  # the id of another entity (a follow-up's customer)
    "text",  # one line of text
    "longtext",  # free text (content, remark)
    "name",  # a company or person name: trimmed, never rewritten
    "mobile",  # mainland mobile number, 11 digits
    "phone",  # landline with area code (or a mobile)
    "email",
    "credit_code",  # 统一社会信用代码, GB 32100-2015
    "id_number",  # 居民身份证号码, GB 11643
    "date",
    "datetime",
    "int",
    "money",
    "bool",
    "enum",  # one value of an enumeration
    "tags",  # several free values
    "user",  # a user name
    "team",  # a team name
)

#: Custom fields may use only these types (a safe subset an admin can reason about).
CUSTOM_FIELD_TYPES = ("text", "longtext", "int", "money", "date", "datetime", "bool", "enum", "tags")

CHANGE_REASON_KEY = "change_reason"  # the workbook's 变更原因 column, not stored in the record
CUSTOM_DATA_KEY = "custom_data"  # JSON of custom-field values, one column per entity table


@dataclass(frozen=True)
class Field:
    key: str
    zh: str
    en: str
    type: str = "text"
    required: bool = False
    enum: str | None = None
    core: bool = False
    sensitive: bool = False
    system: bool = False
    max_length: int | None = None
    ref: str | None = None  # entity key a "ref" field points to
    synonyms: tuple[str, ...] = ()
    custom: bool = False  # an admin-defined field, stored in custom_data
    default: object = None  # the value a new record gets when none is given

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Entity:
    key: str  # "customer"
    table: str  # store table name
    zh: str  # sheet name in a Chinese workbook
    en: str  # sheet name in an English workbook
    id_field: str  # the key of the id field
    id_prefix: str  # "C" → C202405210001
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    def get(self, key: str) -> Field:
        """The field with this key; raises KeyError."""
        return self.by_key[key]

    @cached_property
    def by_key(self) -> dict[str, Field]:
        return {f.key: f for f in self.fields}

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    @cached_property
    def editable(self) -> tuple[Field, ...]:
        """Fields a person types (everything but the store's own)."""
        return tuple(f for f in self.fields if not f.system)

    @cached_property
    def stored(self) -> tuple[Field, ...]:
        """Fields that are columns of the store table (custom fields live in custom_data)."""
        return tuple(f for f in self.fields if not f.custom)

    @cached_property
    def stored_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.stored)

    @cached_property
    def custom_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.custom)

    @cached_property
    def defaults(self) -> tuple[tuple[str, object], ...]:
        """(key, default) of the fields a new record gets a value for when none is given."""
        return tuple((f.key, f.default) for f in self.fields if f.default is not None and not f.system)

    def with_custom(self, custom: tuple[Field, ...]) -> "Entity":
        """This entity with admin-defined fields appended (see custom_field)."""
        own = [c for c in custom if c.key not in self.keys]
        return replace(self, fields=self.fields + tuple(own))


def _f(key, zh, en, type="text", **kw) -> Field:
    if "synonyms" in kw:
        kw["synonyms"] = tuple(kw["synonyms"])
    return Field(key, zh, en, type, **kw)


# Fields every entity carries, set by the store.
def _meta(created_zh="创建时间") -> tuple[Field, ...]:
    return (
        _f("created_at", created_zh, "Created at", "datetime", system=True),
        _f("created_by", "创建人", "Created by", "user", system=True),
        _f("updated_at", "更新时间", "Updated at", "datetime", system=True),
        _f("updated_by", "更新人", "Updated by", "user", system=True),
        _f("version", "版本", "Version", "int", system=True),
        _f("deleted", "已删除", "Deleted", "bool", system=True),
    )


CUSTOMER = Entity(
    "customer", "customers", "客户", "Customers", "customer_id", "C",
    (
        _f("customer_id", "客户编号", "Customer ID", "id", system=True,
           synonyms=["编号", "客户ID", "客户代码", "id", "customer id", "customer no"]),
        _f("customer_name", "客户名称", "Customer name", "name", required=True, core=True,
           max_length=200,
           synonyms=["公司名称", "单位名称", "客户", "企业名称", "公司", "客户全称", "名称", "客户名", "公司全称",
                     "单位全称", "企业全称",
                     "company", "company name", "customer", "account name", "name"]),
        _f("customer_type", "客户类型", "Customer type", "enum", required=True, enum="customer_type",
           default="enterprise",
           synonyms=["类型", "客户类别", "type"]),
        _f("credit_code", "统一社会信用代码", "Credit code", "credit_code", core=True,
           synonyms=["信用代码", "社会信用代码", "统一信用代码", "税号", "纳税人识别号",
                     "uscc", "unified social credit code"]),
        _f("id_number", "证件号码", "ID number", "id_number", sensitive=True,
           synonyms=["身份证号", "身份证号码", "身份证", "证件号", "id card", "identity number"]),
        _f("contact_name", "联系人", "Contact", "name", max_length=50,
           synonyms=["主要联系人", "联系人姓名", "姓名", "contact person", "contact name"]),
        _f("mobile", "手机号", "Mobile", "mobile", sensitive=True,
           synonyms=["手机", "手机号码", "联系电话", "电话", "联系方式", "移动电话", "联系人手机", "联系人电话",
                     "手机/电话",
                     "mobile phone", "cell", "cellphone", "phone number"]),
        _f("phone", "座机", "Landline", "phone", sensitive=True,
           synonyms=["固定电话", "办公电话", "座机号码", "tel", "telephone", "landline", "office phone"]),
        _f("email", "邮箱", "Email", "email", sensitive=True,
           synonyms=["电子邮箱", "邮件", "企业邮箱", "电子邮件", "e-mail", "mail"]),
        _f("industry", "所属行业", "Industry", "enum", enum="industry",
           synonyms=["行业", "行业类别", "sector"]),
        _f("customer_level", "客户等级", "Level", "enum", enum="customer_level",
           synonyms=["等级", "级别", "客户级别", "level", "tier"]),
        _f("status", "客户状态", "Status", "enum", required=True, enum="customer_status", core=True,
           default="potential",
           synonyms=["状态", "阶段", "客户阶段", "customer status"]),
        _f("lost_reason", "流失原因", "Lost reason", "enum", enum="lost_reason",
           synonyms=["流失理由", "丢单原因", "loss reason"]),
        _f("source", "客户来源", "Source", "enum", enum="source",
           synonyms=["来源", "渠道", "获客渠道", "lead source", "channel"]),
        _f("priority", "跟进优先级", "Priority", "enum", enum="priority",
           synonyms=["优先级", "重要程度"]),
        _f("tags", "标签", "Tags", "tags", synonyms=["客户标签", "tag", "labels"]),
        _f("province", "省份", "Province", "text", max_length=20, synonyms=["省", "省市", "state"]),
        _f("city", "城市", "City", "text", max_length=30, synonyms=["市", "所在城市"]),
        _f("district", "区县", "District", "text", max_length=30, synonyms=["区", "县", "区域"]),
        _f("address", "详细地址", "Address", "text", max_length=200,
           synonyms=["地址", "公司地址", "企业地址", "通讯地址", "客户地址", "联系地址", "办公地址", "注册地址",
                     "street", "street address"]),
        _f("owner", "负责人", "Owner", "user", core=True,
           synonyms=["销售", "跟进人", "业务员", "所属销售", "客户经理", "sales rep", "account owner"]),
        _f("team", "所属团队", "Team", "team", synonyms=["团队", "部门", "销售团队", "department"]),
        _f("first_deal_date", "首次合作时间", "First deal date", "date",
           synonyms=["首次合作日期", "合作时间", "首次成交时间", "first deal"]),
        _f("total_amount", "累计交易金额", "Total amount", "money",
           synonyms=["交易金额", "累计金额", "成交金额", "total sales", "revenue"]),
        _f("next_follow_up", "下次跟进时间", "Next follow-up", "datetime",
           synonyms=["下次跟进", "下次联系时间", "next contact"]),
        _f("last_contact_at", "最近联系时间", "Last contact", "datetime", system=True),
        _f("approval_status", "审核状态", "Approval", "enum", enum="approval_status", system=True),
        _f("remark", "备注", "Remark", "longtext", max_length=500,
           synonyms=["说明", "备注信息", "notes", "note", "comment"]),
    ) + _meta("录入时间"),
)

CONTACT = Entity(
    "contact", "contacts", "联系人", "Contacts", "contact_id", "P",
    (
        _f("contact_id", "联系人编号", "Contact ID", "id", system=True),
        _f("customer_id", "客户编号", "Customer ID", "ref", required=True, ref="customer"),
        _f("name", "姓名", "Name", "name", required=True, max_length=50,
           synonyms=["联系人", "联系人姓名", "contact", "contact name"]),
        _f("title", "职位", "Title", "text", max_length=50, synonyms=["职务", "岗位", "job title"]),
        _f("mobile", "手机号", "Mobile", "mobile", sensitive=True, synonyms=["手机", "手机号码", "联系电话"]),
        _f("phone", "座机", "Landline", "phone", sensitive=True, synonyms=["固定电话", "办公电话", "tel"]),
        _f("email", "邮箱", "Email", "email", sensitive=True, synonyms=["电子邮箱", "e-mail"]),
        _f("is_primary", "主要联系人", "Primary", "bool", synonyms=["是否主要联系人", "primary"]),
        _f("birthday", "生日", "Birthday", "date", sensitive=True, synonyms=["出生日期", "birth date"]),
        _f("remark", "备注", "Remark", "longtext", max_length=500),
    ) + _meta(),
)

FOLLOWUP = Entity(
    "followup", "followups", "跟进记录", "Follow-ups", "follow_id", "F",
    (
        _f("follow_id", "跟进编号", "Follow-up ID", "id", system=True),
        _f("customer_id", "客户编号", "Customer ID", "ref", required=True, ref="customer"),
        _f("user", "跟进人", "By", "user", synonyms=["销售", "跟进销售"]),
        _f("follow_time", "跟进时间", "Time", "datetime", required=True, synonyms=["时间", "日期", "跟进日期"]),
        _f("method", "跟进方式", "Method", "enum", required=True, enum="follow_method",
           synonyms=["方式", "联系方式"]),
        _f("content", "跟进内容", "Content", "longtext", required=True, max_length=2000,
           synonyms=["内容", "沟通内容", "内容摘要"]),
        _f("next_step", "下一步计划", "Next step", "longtext", max_length=500, synonyms=["下一步", "计划"]),
        _f("next_time", "下次跟进时间", "Next time", "datetime", synonyms=["下次跟进", "下次联系时间"]),
    ) + _meta(),
)

SERVICE = Entity(
    "service", "service_records", "服务记录", "Service", "service_id", "S",
    (
        _f("service_id", "服务编号", "Service ID", "id", system=True),
        _f("customer_id", "客户编号", "Customer ID", "ref", required=True, ref="customer"),
        _f("service_type", "服务类型", "Type", "enum", required=True, enum="service_type",
           synonyms=["类型", "类别"]),
        _f("channel", "渠道", "Channel", "enum", enum="service_channel", synonyms=["来源渠道", "接入渠道"]),
        _f("problem", "问题描述", "Problem", "longtext", required=True, max_length=2000,
           synonyms=["问题", "咨询内容", "投诉内容"]),
        _f("handling", "处理过程", "Handling", "longtext", max_length=2000, synonyms=["处理", "处理措施"]),
        _f("result", "处理结果", "Result", "longtext", max_length=500, synonyms=["结果"]),
        _f("service_status", "处理状态", "Status", "enum", required=True, enum="service_status",
           default="open",
           synonyms=["状态"]),
        _f("handler", "处理人", "Handler", "user", synonyms=["客服", "负责人"]),
        _f("opened_at", "受理时间", "Opened", "datetime", synonyms=["时间", "日期"]),
        _f("closed_at", "完成时间", "Closed", "datetime"),
    ) + _meta(),
)

DEAL = Entity(
    "deal", "deals", "交易记录", "Deals", "deal_id", "D",
    (
        _f("deal_id", "交易编号", "Deal ID", "id", system=True),
        _f("customer_id", "客户编号", "Customer ID", "ref", required=True, ref="customer"),
        _f("product", "产品/服务", "Product/service", "text", required=True, max_length=200,
           synonyms=["产品", "服务", "产品名称", "product"]),
        _f("amount", "金额", "Amount", "money", synonyms=["交易金额", "合同金额", "amount"]),
        _f("deal_date", "交易日期", "Date", "date", synonyms=["日期", "签约日期"]),
        _f("stage", "阶段", "Stage", "enum", required=True, enum="deal_stage", default="lead", synonyms=["交易阶段", "商机阶段"]),
        _f("owner", "负责人", "Owner", "user", synonyms=["销售"]),
        _f("contract_end", "合同到期日", "Contract end", "date", synonyms=["到期日", "合同截止日期"]),
        _f("remark", "备注", "Remark", "longtext", max_length=500),
    ) + _meta(),
)

#: Every entity, in the order of the workbook's sheets and of store creation (parents first).
ENTITIES: dict[str, Entity] = {e.key: e for e in (CUSTOMER, CONTACT, FOLLOWUP, SERVICE, DEAL)}


def entity(key: str) -> Entity:
    """Return the entity with this key or table name (``customer`` or ``customers``)."""
    for e in ENTITIES.values():
        if key in (e.key, e.table):
            return e
    raise KeyError(key)


# ---- enumerations: seed data in data/enums.csv, owned by the admin once seeded -------------------

@dataclass(frozen=True)
class EnumItem:
    list_key: str  # "customer_status"
    key: str  # stable key stored in records: "lost"
    zh: str  # 流失客户
    en: str  # Lost
    sort: int = 0
    synonyms: tuple[str, ...] = ()

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


@cache
def seed_enums() -> tuple[EnumItem, ...]:
    """The enumerations a new store starts with (crmsync/data/enums.csv)."""
    text = resources.files("crmsync.data").joinpath("enums.csv").read_text(encoding="utf-8")
    items = []
    for row in csv.DictReader(text.splitlines()):
        syn = tuple(s for s in (row.get("synonyms") or "").split("|") if s)
        items.append(EnumItem(row["list"], row["key"], row["zh"], row["en"], int(row["sort"]), syn))
    return tuple(items)


# ---- custom fields -------------------------------------------------------------------------------

_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def custom_field(entity_key: str, key: str, zh: str, en: str | None = None, type: str = "text",
                 enum: str | None = None, required: bool = False, sensitive: bool = False) -> Field:
    """Return the Field for an admin-defined custom field, or raise ValueError naming the problem."""
    ent = entity(entity_key)
    if not _CUSTOM_KEY.match(key):
        raise ValueError(f"custom field key {key!r}: use 2–40 lowercase letters, digits, _")
    if key in ent.keys or key in (CHANGE_REASON_KEY, CUSTOM_DATA_KEY):
        raise ValueError(f"custom field key {key!r} is already a field of {ent.key}")
    if type not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"custom field type {type!r}: one of {', '.join(CUSTOM_FIELD_TYPES)}")
    if type == "enum" and not enum:
        raise ValueError("an enum custom field needs the name of its list (--enum)")
    return Field(key, zh, en or key, type, required=required, enum=enum if type == "enum" else None,
                 sensitive=sensitive, custom=True)


def sheet_label(ent: Entity, lang: str = "zh") -> str:
    return ent.label(lang)


def header_index(ent: Entity) -> dict[str, str]:
    """Map every known header spelling (labels, keys, synonyms; case- and space-insensitive) to a key.

    Used by the importer and the workbook reader.  A label of the entity's own fields wins over a
    synonym; the first field claiming a synonym keeps it.
    """
    index: dict[str, str] = {}
    for f in ent.fields:
        for spelling in (f.key, f.zh, f.en):
            index.setdefault(normalise_header(spelling), f.key)
    for f in ent.fields:
        for spelling in f.synonyms:
            index.setdefault(normalise_header(spelling), f.key)
    index.setdefault(normalise_header("变更原因"), CHANGE_REASON_KEY)
    index.setdefault(normalise_header("change reason"), CHANGE_REASON_KEY)
    return index


_HEADER_JUNK = re.compile(r"[\s*＊:：()（）\[\]【】_\-]+")


def normalise_header(text: object) -> str:
    """A header cell as a comparison key: full-width folded, lower case, no spaces or markers."""
    import unicodedata

    s = unicodedata.normalize("NFKC", str(text or "")).strip().lower()
    return _HEADER_JUNK.sub("", s)
