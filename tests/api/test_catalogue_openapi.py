"""Every catalogue endpoint is in the OpenAPI document, with a summary and its request body."""

from __future__ import annotations

ENDPOINTS = {
    ("post", "/api/v1/coupon-templates"),
    ("get", "/api/v1/coupon-templates"),
    ("get", "/api/v1/coupon-templates/{template_id}"),
    ("post", "/api/v1/coupon-templates/{template_id}/deactivate"),
    ("post", "/api/v1/coupon-templates/{template_id}/issue"),
    ("get", "/api/v1/members/{member_id}/coupons"),
    ("post", "/api/v1/events"),
    ("post", "/api/v1/reviews"),
    ("post", "/api/v1/rewards"),
    ("get", "/api/v1/rewards"),
    ("get", "/api/v1/rewards/{reward_id}"),
    ("patch", "/api/v1/rewards/{reward_id}"),
    ("post", "/api/v1/rewards/{reward_id}/redemptions"),
    ("get", "/api/v1/rewards/redemptions"),
    ("post", "/api/v1/rewards/redemptions/{redemption_id}/deliver"),
    ("post", "/api/v1/rewards/redemptions/{redemption_id}/cancel"),
    ("get", "/api/v1/portal/merchants/{merchant}/checkin"),
    ("post", "/api/v1/portal/merchants/{merchant}/checkin"),
    ("get", "/api/v1/portal/merchants/{merchant}/rewards"),
    ("post", "/api/v1/portal/merchants/{merchant}/rewards/{reward_id}/redeem"),
    ("get", "/api/v1/portal/merchants/{merchant}/redemptions"),
    ("get", "/api/v1/portal/merchants/{merchant}/coupons"),
}


async def test_catalogue_endpoints_are_documented(client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented >= ENDPOINTS, sorted(ENDPOINTS - documented)
    for method, path in ENDPOINTS:
        assert doc["paths"][path][method].get("summary"), (method, path)
    body = doc["paths"]["/api/v1/coupon-templates"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("TemplateIn")
    assert {"amount_off", "percent_off", "cap", "valid_days", "stock_total"} <= set(
        doc["components"]["schemas"]["TemplateIn"]["properties"]
    )
