"""The member's privacy journey on a phone-sized screen (390 x 844), in zh-CN and English: join from
the link, edit the profile (the birthday is then locked), withdraw the SMS consent (its history
shows it), switch the language while signed in, download the data (JSON), erase it at the merchant,
then everywhere (signed out).

Screenshots land in tests/browser/artifacts/<language>/portal-privacy-*.png; axe-core and the CSP
checks run on each page (conftest's ``Visit.check``).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from playwright.async_api import expect

from lianka.platform.identity.members import normalise_phone
from lianka.web.console.i18n import Language
from tests.browser.conftest import Served
from tests.browser.test_portal import LANGS, PHONE_SIZE, OpenPage, _tea_shop, texted_code


@pytest.mark.parametrize("lang", LANGS)
async def test_profile_consent_download_and_erasure_on_the_phone(
    open_page: OpenPage, served: Served, browser_db: object, lang: str
) -> None:
    _, slug, _ = await _tea_shop(browser_db)
    visit = await open_page(lang)
    page, t, pt = visit.page, Language(lang).gettext, Language(lang).pgettext
    await page.set_viewport_size(PHONE_SIZE)

    # join (the link's flow), landing on the card
    await visit.goto(f"/join/{slug}")
    phone = f"139{random.randrange(10**8):08d}"
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("send-code").click()
    await page.wait_for_selector("#f-code")
    await page.fill("#f-code", await asyncio.to_thread(texted_code, served, phone))
    await page.locator("#f-privacy").check()
    await page.locator("#f-consent_sms").check()
    await page.get_by_test_id("join").click()
    await page.wait_for_url("**/m")

    # the profile: name, e-mail, birthday (then locked), preferences
    await page.locator(f"a[data-merchant='{slug}']").click()
    await page.get_by_test_id("profile-link").click()
    await page.wait_for_url(f"**/m/{slug}/profile")
    await page.fill("#f-name", "王小明" if lang == "zh-CN" else "Ming")
    await page.fill("#f-email", "not-an-address")
    await page.fill("#f-birthday", "1990-05-31")
    await page.get_by_test_id("save-profile").click()
    await page.wait_for_selector("#f-email-error")
    assert await page.locator("#f-email-error").inner_text() == t("Enter an e-mail address such as ming@example.com.")
    await visit.check("portal-privacy-profile-error")
    await page.fill("#f-email", "ming@example.com")
    await page.fill("#f-preference", "少糖" if lang == "zh-CN" else "less sugar")
    await page.get_by_test_id("save-profile").click()
    await expect(page.get_by_test_id("flash")).to_have_text(t("Your profile is saved."))
    await expect(page.get_by_test_id("birthday-locked")).to_be_visible()
    assert await page.locator("#f-birthday").count() == 0

    # withdraw the SMS consent given when joining: the history keeps both, with their times
    sms = page.locator(".consent[data-channel='sms']")
    await expect(sms.get_by_test_id("consent-state")).to_have_text(pt("consent", "On"))
    await page.get_by_test_id("withdraw-sms").click()
    await expect(page.get_by_test_id("flash")).to_have_text(t("Consent withdrawn: no more news on this channel."))
    await expect(sms.get_by_test_id("consent-state")).to_have_text(pt("consent", "Off"))
    await sms.locator("summary").click()
    history = sms.get_by_test_id("consent-history").locator("li")
    await expect(history).to_have_count(2)
    assert t("withdrawn") in await history.nth(0).inner_text() and t("by you") in await history.nth(0).inner_text()
    await visit.check("portal-privacy-profile")

    # the language switch works for a signed-in member (the member session's token)
    other = "en" if lang == "zh-CN" else "zh-CN"
    await page.locator(f".lang-switch button[value='{other}']").click()
    await expect(page.locator("html")).to_have_attribute("lang", other)
    await page.wait_for_url(f"**/m/{slug}/profile")
    await page.locator(f".lang-switch button[value='{lang}']").click()
    await expect(page.locator("html")).to_have_attribute("lang", lang)

    # download my data (JSON): my card and my profile there
    await page.get_by_test_id("privacy-link").click()
    await page.wait_for_url("**/m/privacy")
    await visit.check("portal-privacy")
    async with page.expect_download() as download_info:
        await page.get_by_test_id("download-json").click()
    download = await download_info.value
    path = await download.path()
    data = json.loads(await asyncio.to_thread(Path(path).read_text, encoding="utf-8"))
    assert data["identity"]["phone"] == normalise_phone(phone)
    assert data["merchants"][0]["profile"]["email"] == "ming@example.com"

    # erase at the merchant: a wrong phone is refused beside the field, then done
    await page.select_option("#f-scope", slug)
    await page.fill("#f-phone", "13800000000")
    await page.get_by_test_id("erase").click()
    await page.wait_for_selector("#f-phone-error")
    await visit.check("portal-privacy-erase-error")
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("erase").click()
    await expect(page.get_by_test_id("flash")).to_have_text(t("Done: the shop has erased your personal data."))
    await expect(page.get_by_test_id("erasure-requests").locator("li[data-status='done']")).to_have_count(1)
    await visit.check("portal-privacy-erased")

    # then everywhere: signed out, and the card is gone
    await page.select_option("#f-scope", "everywhere")
    await page.fill("#f-phone", phone)
    await page.get_by_test_id("erase").click()
    await page.wait_for_url("**/m/sign-in")
    await expect(page.get_by_test_id("flash")).to_have_text(
        t("Done: your personal data is erased everywhere and you are signed out.")
    )
    await visit.goto("/m")
    await page.wait_for_url("**/m/sign-in?next=/m")
