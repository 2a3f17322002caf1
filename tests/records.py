"""Literal records the tests start from."""

from __future__ import annotations


def customer(**overrides) -> dict:
    values = {"customer_name": "上海示例科技有限公司", "mobile": "13812345678",
              "contact_name": "张三", "customer_type": "企业客户", "status": "潜在客户"}
    values.update(overrides)
    return values
