"""The bundled knowledge base of Lumen Home, the fictional home-goods retailer behind the
reference target.

Every answer carries concrete figures (days, amounts, hours) so that `contains` checks in
the example suite have something real to hold on to, and each answer comes in three
phrasings: the canonical one, an alternative that keeps the facts (so an `exact` check
can flip while `contains` holds), and a vague one that drops them (so `contains` flips).
Keyword patterns are matched against normalised text: lower case, accents stripped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "GENERIC_ANSWER",
    "REGION_PATTERNS",
    "TOPICS",
    "US_CASED",
    "Phrasings",
    "Topic",
    "normalise",
]


@dataclass(frozen=True, slots=True)
class Phrasings:
    """One answer in its canonical, alternative and fact-free forms."""

    answer: str
    alt: str
    vague: str


@dataclass(frozen=True, slots=True)
class Topic:
    """A knowledge-base entry: weighted keyword patterns and the answer(s) they lead to.

    `regional` holds answers that differ by customer region (`eu`, `us`, `uk`); `text` is
    used when the region is unknown.
    """

    key: str
    patterns: tuple[tuple[re.Pattern[str], int], ...]
    text: Phrasings
    regional: dict[str, Phrasings] = field(default_factory=dict)

    def score(self, normalised_text: str) -> int:
        """Sum of the weights of the patterns found; 0 when nothing matches."""
        return sum(weight for pattern, weight in self.patterns if pattern.search(normalised_text))


def normalise(text: str) -> str:
    """Lower case, accents stripped, typographic apostrophes made plain: what patterns see."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _topic(
    key: str,
    keywords: list[tuple[str, int]],
    text: Phrasings,
    regional: dict[str, Phrasings] | None = None,
) -> Topic:
    compiled = tuple((re.compile(source), weight) for source, weight in keywords)
    return Topic(key=key, patterns=compiled, text=text, regional=regional or {})


_RETURN_STEPS = (
    "Items should be unused and in their original packaging. Start the return under "
    "Account > Orders and we'll email you a prepaid label; once the item is back with us, "
    "the refund goes to your original payment method within 5-7 business days."
)
_RETURN_STEPS_ALT = (
    "Just open Account > Orders, choose Return and use the prepaid label we email you (the "
    "item needs to be unused and in its original packaging). The money reaches your original "
    "payment method 5-7 business days after the return arrives."
)
_RETURN_VAGUE = (
    "You can send most items back for a refund as long as they're unused and in their "
    "original packaging. Start the return under Account > Orders and we'll take it from there."
)

REFUND_WINDOW = _topic(
    "refund_window",
    [
        (r"\brefund", 2),
        (r"\breturn(?:s|ing|ed)?\b", 2),
        (r"\breturn (?:window|policy|period)\b", 2),
        (r"\bsend (?:it |them |this |that )?back\b", 2),
        (r"\bmoney back\b", 2),
        (r"\bchange(?:d)? (?:my|our) minds?\b", 1),
        (r"\bwithdraw", 1),
        (r"\bwiderruf", 2),
        (r"zuruck(?:geben|senden|schicken)", 2),
        (r"\bruckgabe", 2),
        (r"\bgeld zuruck\b", 2),
        (r"\bretourn", 2),
        (r"\brembours", 2),
        (r"\bdevol(?:ver|verla|verlo|ucion)", 2),
        (r"\breembols", 2),
        (r"\brimbors", 2),
        (r"\breso\b", 1),
        (r"\bterug(?:sturen|geven|betaling)", 2),
    ],
    Phrasings(
        answer=(
            "You can return items within 30 days of delivery in the US and UK, or within "
            "14 days of delivery in the EU, for a full refund. " + _RETURN_STEPS
        ),
        alt=(
            "Returns are accepted for 30 days after delivery in the US and UK and for 14 days "
            "after delivery in the EU, with a full refund. " + _RETURN_STEPS_ALT
        ),
        vague=_RETURN_VAGUE,
    ),
    regional={
        "eu": Phrasings(
            answer=(
                "You can return it within 14 days of delivery for a full refund; that's the EU "
                "withdrawal period, and no reason is needed. " + _RETURN_STEPS
            ),
            alt=(
                "EU customers have 14 days from delivery to send an item back for a full "
                "refund, no questions asked. " + _RETURN_STEPS_ALT
            ),
            vague=_RETURN_VAGUE,
        ),
        "us": Phrasings(
            answer="You can return it within 30 days of delivery for a full refund. "
            + _RETURN_STEPS,
            alt="Returns are accepted for 30 days after delivery, with a full refund. "
            + _RETURN_STEPS_ALT,
            vague=_RETURN_VAGUE,
        ),
        "uk": Phrasings(
            answer="You can return it within 30 days of delivery for a full refund. "
            + _RETURN_STEPS,
            alt="Returns are accepted for 30 days after delivery, with a full refund. "
            + _RETURN_STEPS_ALT,
            vague=_RETURN_VAGUE,
        ),
    },
)

DAMAGED = _topic(
    "damaged_item",
    [
        (r"\bdamaged?\b", 3),
        (r"\bbroken\b", 2),
        (r"\bcracked\b", 3),
        (r"\bsmashed\b", 3),
        (r"\bshattered\b", 3),
        (r"\bdented\b", 3),
        (r"\bin pieces\b", 3),
        (r"\bscratch(?:ed|es)\b", 2),
        (r"\bbeschadigt", 3),
        (r"\bkaputt", 2),
        (r"\babime", 3),
        (r"\broto\b", 2),
    ],
    Phrasings(
        answer=(
            "I'm sorry it arrived damaged. Please report it within 48 hours of delivery under "
            "Account > Orders > Report a problem, with a photo of the item and the box; we'll "
            "send a free replacement or a full refund, and you don't need to send the damaged "
            "item back."
        ),
        alt=(
            "Sorry about that! Send us a photo of the damaged item and its packaging within "
            "48 hours of delivery (Account > Orders > Report a problem) and we'll ship a free "
            "replacement or refund you in full; there's no need to return it."
        ),
        vague=(
            "Sorry about that! Report the problem under Account > Orders and we'll sort out a "
            "replacement or a refund."
        ),
    ),
)

WARRANTY = _topic(
    "warranty",
    [
        (r"\bwarrant(?:y|ies)\b", 3),
        (r"\bguarantee\b", 2),
        (r"\bstopped working\b", 3),
        (r"\b(?:doesn'?t|does not|won'?t|will not) (?:turn on|work|heat|spin|charge)\b", 2),
        (r"\bdefect(?:ive|s)?\b", 2),
        (r"\bfaulty\b", 2),
        (r"\bcovered\b", 1),
        (r"\bgarantie\b", 3),
        (r"\bafter \d+ (?:months|years)\b", 1),
    ],
    Phrasings(
        answer=(
            "Lumen Home furniture and appliances are covered by our warranty for 2 years from "
            "delivery against manufacturing defects. Start a claim under Account > Orders > "
            "Warranty claim with your order number and a photo or short video of the fault, and "
            "we'll repair or replace the item."
        ),
        alt=(
            "Our warranty covers manufacturing defects for 2 years after delivery on all "
            "furniture and appliances. File a warranty claim under Account > Orders with a "
            "photo or video of the fault and we'll repair or replace it."
        ),
        vague=(
            "Manufacturing defects are covered by our warranty. File a claim under Account > "
            "Orders and we'll take a look."
        ),
    ),
)

SHIPPING_TIMES = _topic(
    "shipping_times",
    [
        (r"\bhow long\b", 1),
        (r"\b(?:shipping|delivery) (?:time|times|take|takes)\b", 3),
        (
            r"\bwhen will (?:it|my order|my package|they|the order) (?:arrive|come|ship|get here)\b",
            2,
        ),
        (r"\bship(?:ping|ped|s)?\b", 1),
        (r"\bdeliver(?:y|ed)?\b", 1),
        (r"\bbusiness days\b", 1),
        (r"\bexpress\b", 1),
        (r"\bstandard shipping\b", 1),
        (r"\btake to\b", 1),
        (r"\blieferzeit\b", 3),
        (r"\bdelai de livraison\b", 3),
    ],
    Phrasings(
        answer=(
            "Standard shipping takes 3-5 business days within the US and 5-8 business days to "
            "the UK and EU; express shipping takes 1-2 business days. Orders placed before 2pm "
            "ship the same business day."
        ),
        alt=(
            "Most orders arrive within 3-5 business days in the US (5-8 business days for the "
            "UK and EU), or within 1-2 business days with express shipping; orders placed "
            "before 2pm leave our warehouse the same day."
        ),
        vague=(
            "Delivery times depend on where you are and the shipping option you choose at checkout."
        ),
    ),
)

SHIPPING_COSTS = _topic(
    "shipping_costs",
    [
        (r"\bshipping (?:cost|costs|fee|fees|price|charge|charges)\b", 3),
        (r"\bhow much (?:is|does|for) (?:the )?(?:shipping|delivery)\b", 3),
        (r"\bfree (?:shipping|delivery)\b", 3),
        (r"\b(?:shipping|delivery) (?:is )?free\b", 3),
        (r"\bdelivery (?:fee|charge|cost)s?\b", 3),
        (r"\bversandkosten\b", 3),
        (r"\bfrais de (?:port|livraison)\b", 3),
        (r"\bminimum\b", 1),
        (r"\bspend\b", 1),
    ],
    Phrasings(
        answer=(
            "Standard shipping is $5.95 and free on US orders of $75 or more; express shipping "
            "is $14.95. In the UK and EU standard shipping is £5.95 / €6.95, free over £70 / €80."
        ),
        alt=(
            "US orders of $75 or more ship free; below that, standard shipping is $5.95 and "
            "express is $14.95. (UK and EU: £5.95 / €6.95, free over £70 / €80.)"
        ),
        vague=(
            "Shipping costs depend on your order total and the delivery option; you'll see the "
            "exact price at checkout."
        ),
    ),
)

ORDER_TRACKING = _topic(
    "order_tracking",
    [
        (r"\btrack(?:ing)?\b", 2),
        (r"\bwhere'?s? (?:is )?(?:my|the) (?:order|package|parcel|stuff|delivery)\b", 3),
        (r"\bwhere'?s\s+my\b", 2),
        (r"\border status\b", 3),
        (r"\bstatus of (?:my |the )?order\b", 3),
        (r"\b(?:hasn'?t|has not|haven'?t|have not) (?:arrived|come|shipped|received)\b", 2),
        (r"\bnot (?:arrived|received)\b", 2),
        (r"\bwo ist meine\b", 3),
        (r"\bou est ma commande\b", 3),
    ],
    Phrasings(
        answer=(
            "As soon as your order ships we email you a tracking number; you can also follow it "
            "under Account > Orders or at lumenhome.example/track. If you share your order "
            "number (it looks like LH-123456), I can check the status for you."
        ),
        alt=(
            "Once your order ships you'll get an email with a tracking number, and the latest "
            "status is always under Account > Orders (or lumenhome.example/track). Send me your "
            "order number, like LH-123456, and I'll check it."
        ),
        vague="You can follow your order's progress under Account > Orders.",
    ),
)

ORDER_CANCEL = _topic(
    "order_cancel",
    [
        (r"\bcancel (?:my|the|an|this|that) order\b", 4),
        (r"\bcancel order\b", 4),
        (r"\bstorn", 3),
    ],
    Phrasings(
        answer=(
            "You can cancel an order free of charge until it ships: go to Account > Orders and "
            "choose Cancel order. Once it has shipped, you can return it instead."
        ),
        alt=(
            "Orders can be cancelled at no cost up to the moment they ship, under Account > "
            "Orders > Cancel order; after that, a return is the way to go."
        ),
        vague="Cancellation depends on where your order is; check Account > Orders.",
    ),
)

ADDRESS_CHANGE = _topic(
    "address_change",
    [
        (r"\b(?:change|update|wrong|correct) (?:the |my )?(?:delivery |shipping )?address\b", 4),
        (r"\bdeliver(?:ed)? to a different address\b", 4),
        (r"\bnew address\b", 2),
    ],
    Phrasings(
        answer=(
            "You can change the delivery address until your order ships: open Account > Orders, "
            "choose the order and select Edit address. After it ships, contact the carrier with "
            "your tracking number to redirect it."
        ),
        alt=(
            "Until the order ships, the delivery address can be edited under Account > Orders > "
            "Edit address; once it's on its way, the carrier can redirect it using your tracking "
            "number."
        ),
        vague="Address changes are sometimes possible; check your order under Account > Orders.",
    ),
)

GIFT_CARDS = _topic(
    "gift_cards",
    [
        (r"\bgift ?cards?\b", 4),
        (r"\bgift ?certificates?\b", 4),
        (r"\bgutschein", 4),
        (r"\bcarte cadeau\b", 4),
        (r"\bcash\b", 1),
        (r"\bbalance\b", 1),
    ],
    Phrasings(
        answer=(
            "Lumen Home gift cards are non-refundable and can't be exchanged for cash, but they "
            "never expire and can be used online or in any store. You can check the balance "
            "under Account > Gift cards."
        ),
        alt=(
            "Gift cards are non-refundable and can't be swapped for cash, but they never "
            "expire, so the balance stays available for online or in-store purchases."
        ),
        vague="Gift cards can be used online or in any of our stores.",
    ),
)

PASSWORD_RESET = _topic(
    "password_reset",
    [
        (r"\bpas+wo?r?d\b", 3),
        (r"\breset (?:link|email|e-mail)\b", 3),
        (r"\b(?:can'?t|cannot|can not|unable to) (?:log ?in|sign ?in)\b", 2),
        (r"\blocked out\b", 2),
        (r"\bforgot\b", 1),
        (r"\blog ?in\b", 1),
        (r"\bsign ?in\b", 1),
        (r"\bpasswort\b", 3),
        (r"\bmot de passe\b", 3),
    ],
    Phrasings(
        answer=(
            "Choose 'Forgot password' on the sign-in page and we'll email you a reset link "
            "that's valid for 60 minutes. If it doesn't arrive within a few minutes, check your "
            "spam folder and make sure you're using the email address on your account."
        ),
        alt=(
            "Use 'Forgot password' on the sign-in page to get a reset link by email (it works "
            "for 60 minutes). Nothing after a few minutes? Look in your spam folder and check "
            "it's the email address on your account."
        ),
        vague="You can reset your password from the sign-in page.",
    ),
)

PRICE_MATCH = _topic(
    "price_match",
    [
        (r"\bprice ?match", 4),
        (r"\bcheaper\b", 2),
        (r"\blower price\b", 2),
        (r"\bprice (?:drop|dropped|went down)\b", 3),
        (r"\bwent on sale\b", 2),
        (r"\bthe difference\b", 2),
    ],
    Phrasings(
        answer=(
            "We price match identical items sold by major retailers: if you find it cheaper "
            "within 7 days of your purchase, send us the link under Account > Orders > Price "
            "match and we'll refund the difference to your original payment method."
        ),
        alt=(
            "Found the identical item cheaper at a major retailer within 7 days of buying it? "
            "Send us the link under Account > Orders > Price match and we'll refund the "
            "difference."
        ),
        vague="We do price match in some cases; send us the details under Account > Orders.",
    ),
)

SUBSCRIPTION = _topic(
    "subscription",
    [
        (r"\blumen ?plus\b", 4),
        (r"\bmembership\b", 3),
        (r"\bsubscription\b", 3),
        (r"\bauto-?renew", 2),
        (r"\brenewal\b", 2),
        (r"\bannual fee\b", 2),
        (r"\bcharged again\b", 1),
        (r"\bcancel\b", 1),
    ],
    Phrasings(
        answer=(
            "You can cancel Lumen Plus any time under Account > Membership > Cancel membership. "
            "There's no cancellation fee; your benefits continue until the end of the period "
            "you've already paid for, and you won't be charged again."
        ),
        alt=(
            "Lumen Plus can be cancelled any time from Account > Membership, with no fee. You "
            "keep the benefits until the paid period ends and no further charges are taken."
        ),
        vague="You can manage your Lumen Plus membership from your account.",
    ),
)

STORE_HOURS = _topic(
    "store_hours",
    [
        (r"\b(?:opening|store|shop) hours\b", 3),
        (r"\b(?:are|is) (?:you|the store|the shop|it|your store|the showroom) open\b", 3),
        (r"\bopen (?:on )?(?:sundays?|saturdays?|mondays?|today|tomorrow|late)\b", 3),
        (r"\bclos(?:e|ing) time\b", 2),
        (r"\bwhat time\b", 1),
        (r"\b(?:store|shop|showroom)\b", 1),
        (r"\boffnungszeit", 3),
    ],
    Phrasings(
        answer=(
            "Our stores are open Monday to Saturday 9am-8pm and Sunday 10am-6pm (local time); a "
            "few locations differ on public holidays, so check lumenhome.example/stores. Online "
            "chat support is available 24/7."
        ),
        alt=(
            "Stores open 9am-8pm Monday to Saturday and 10am-6pm on Sunday, local time (holiday "
            "hours vary by location: lumenhome.example/stores). Chat support runs 24/7."
        ),
        vague="Store hours vary by location; see lumenhome.example/stores.",
    ),
)

PAYMENT_METHODS = _topic(
    "payment_methods",
    [
        (r"\bpay(?:ment)? (?:methods?|options?)\b", 3),
        (r"\b(?:paypal|klarna|apple pay|amex|american express|afterpay)\b", 3),
        (r"\bpay in (?:installments|instalments)\b", 3),
        (r"\bdo you (?:take|accept)\b", 2),
    ],
    Phrasings(
        answer=(
            "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and Lumen Home gift "
            "cards, and purchases over $150 can be split into 4 interest-free payments with "
            "Klarna."
        ),
        alt=(
            "You can pay with Visa, Mastercard, American Express, PayPal, Apple Pay or a Lumen "
            "Home gift card; over $150, Klarna splits the total into 4 interest-free payments."
        ),
        vague="We accept all major cards and several other payment methods.",
    ),
)

INTERNATIONAL = _topic(
    "international",
    [
        (r"\binternational(?:ly)?\b", 3),
        (r"\b(?:ship|deliver) (?:to|outside)\b", 1),
        (r"\b(?:canada|australia|mexico|japan|switzerland|norway|new zealand|brazil)\b", 2),
    ],
    Phrasings(
        answer=(
            "We currently deliver to the US, the UK and all EU countries. We don't ship anywhere "
            "else yet, but you can sign up at lumenhome.example/intl to hear when we expand."
        ),
        alt=(
            "Right now we ship to the US, the UK and every EU country, and nowhere else yet; "
            "sign up at lumenhome.example/intl to be told when that changes."
        ),
        vague="We ship to a number of countries; see lumenhome.example/intl.",
    ),
)

# Order matters only for ties: the more specific topics come first.
TOPICS: tuple[Topic, ...] = (
    GIFT_CARDS,
    PRICE_MATCH,
    DAMAGED,
    WARRANTY,
    ORDER_CANCEL,
    ADDRESS_CHANGE,
    SUBSCRIPTION,
    REFUND_WINDOW,
    SHIPPING_COSTS,
    ORDER_TRACKING,
    SHIPPING_TIMES,
    PASSWORD_RESET,
    STORE_HOURS,
    PAYMENT_METHODS,
    INTERNATIONAL,
)

GENERIC_ANSWER = (
    "I'm not sure about that; let me connect you with the right place: our help centre at "
    "lumenhome.example/help covers most questions, and I can help with returns, shipping, "
    "orders, warranty and your account."
)

# Where the customer is, from place names, currencies and (for the EU) language. Matched on
# normalised text except `US_CASED`, which needs capitals to tell "US" from "us".
REGION_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "eu": (
        re.compile(
            r"\b(?:eu|e\.u\.|europe|european|germany|deutschland|berlin|munich|munchen|hamburg|"
            r"cologne|koln|frankfurt|france|paris|lyon|marseille|toulouse|spain|espana|madrid|"
            r"barcelona|valencia|sevilla|italy|italia|rome|roma|milan|milano|naples|netherlands|"
            r"holland|amsterdam|rotterdam|utrecht|belgium|brussels|antwerp|austria|osterreich|"
            r"vienna|wien|ireland|dublin|cork|galway|portugal|lisbon|lisboa|porto|poland|warsaw|"
            r"krakow|sweden|stockholm|denmark|copenhagen|finland|helsinki|greece|athens|czech|"
            r"prague|praha)\b"
        ),
        re.compile(r"€|\beur\b|\beuros?\b"),
        re.compile(
            r"\b(?:ich|habe|bestellt|bitte|bonjour|j'ai|commande|est-ce|ciao|ho comprato|"
            r"posso|ik heb|bestelling)\b"
        ),
    ),
    "uk": (
        re.compile(
            r"\b(?:uk|u\.k\.|united kingdom|england|scotland|wales|britain|london|manchester|"
            r"birmingham|leeds|glasgow|edinburgh|liverpool|bristol|cardiff|belfast|sheffield|"
            r"newcastle)\b"
        ),
        re.compile(r"£|\bgbp\b|\bquid\b"),
    ),
    "us": (
        re.compile(
            r"\b(?:usa|united states|america|texas|california|new york|ohio|florida|illinois|"
            r"chicago|seattle|portland|boston|denver|austin|atlanta|oregon|arizona|phoenix|"
            r"michigan|detroit|georgia|virginia|colorado|nyc|los angeles|san francisco|houston|dallas)\b"
        ),
        re.compile(r"\$|\busd\b|\bdollars?\b"),
    ),
}
US_CASED = re.compile(r"\b(?:US|USA|U\.S\.A?\.?)(?![A-Za-z])")
