"""Marketing's domain errors (mapped to RFC 9457 problems by ``web/problems.py``)."""

from __future__ import annotations

from lianka.platform.errors import Conflict, NotFound, RuleViolation, ValidationFailed


class BadSegmentRules(ValidationFailed):
    """The rule document does not decode or breaks a rule of its shape; ``field`` names the part."""

    type_slug = "bad-segment-rules"
    title = "The segment's rules are invalid"


class UnknownReference(RuleViolation):
    """The rules name a branch or coupon template this merchant does not have."""

    type_slug = "segment-unknown-reference"
    title = "The segment's rules name something that does not exist"


class SegmentNameTaken(Conflict):
    type_slug = "segment-name-taken"
    title = "A segment with this name exists"


class SegmentInUse(Conflict):
    type_slug = "segment-in-use"
    title = "An audience was frozen from this segment: it cannot be deleted"


class SegmentNotFound(NotFound):
    type_slug = "segment-not-found"
    title = "No such segment"


class BadProviderSettings(ValidationFailed):
    type_slug = "bad-provider-settings"
    title = "The messaging provider's settings are invalid"


class BadUnsubscribeLink(NotFound):
    type_slug = "bad-unsubscribe-link"
    title = "This unsubscribe link is not valid"


class CampaignNotFound(NotFound):
    type_slug = "campaign-not-found"
    title = "No such campaign"


class BadCampaign(ValidationFailed):
    """A campaign field is invalid (an unknown template variable, a bad split); ``field`` names it."""

    type_slug = "bad-campaign"
    title = "The campaign is invalid"


class CampaignNameTaken(Conflict):
    type_slug = "campaign-name-taken"
    title = "A campaign with this name exists"


class CampaignAlreadyStarted(Conflict):
    type_slug = "campaign-already-started"
    title = "This campaign has already been sent"


class NotDeadLetter(RuleViolation):
    type_slug = "campaign-message-not-dead"
    title = "Only a dead letter can be re-sent"


class AutomationNotFound(NotFound):
    type_slug = "automation-not-found"
    title = "No such automation"


class BadAutomation(ValidationFailed):
    """An automation field is invalid (unknown trigger, days out of range…); ``field`` names it."""

    type_slug = "bad-automation"
    title = "The automation is invalid"


class AutomationNameTaken(Conflict):
    type_slug = "automation-name-taken"
    title = "An automation with this name exists"


class BadDraw(ValidationFailed):
    """A lucky draw's definition breaks a rule; ``field`` names the part."""

    type_slug = "bad-lucky-draw"
    title = "The lucky draw is invalid"


class DrawNotFound(NotFound):
    type_slug = "lucky-draw-not-found"
    title = "No such lucky draw"


class DrawNameTaken(Conflict):
    type_slug = "lucky-draw-name-taken"
    title = "A lucky draw with this name exists"


class DrawClosed(RuleViolation):
    type_slug = "lucky-draw-closed"
    title = "This lucky draw is not open"


class AlreadyDrawnToday(RuleViolation):
    type_slug = "lucky-draw-already-drawn-today"
    title = "The free draw of today is used; come back tomorrow"


# --- alliance cross-marketing (decision 0044) ----------------------------------------------------------


class OfferNotFound(NotFound):
    """Unknown, another alliance's, or neither funded by nor aimed at the asking partner."""

    type_slug = "alliance-offer-not-found"
    title = "Alliance offer not found"


class BadOffer(ValidationFailed):
    type_slug = "bad-alliance-offer"
    title = "The alliance offer is invalid"


class OfferDecided(Conflict):
    type_slug = "alliance-offer-decided"
    title = "The offer was already accepted or declined"


class VoucherNotValid(RuleViolation):
    """Unknown code, another funder's offer, expired, already used or under the minimum spend."""

    type_slug = "alliance-voucher-not-valid"
    title = "This voucher cannot be used here"


class BadSubscription(ValidationFailed):
    """A WeChat subscription report that is not ``wx.requestSubscribeMessage``'s answer."""

    type_slug = "bad-wechat-subscription"
    title = "The WeChat subscription report is invalid"
