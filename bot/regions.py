"""Regions are ISO 3166-1 alpha-2 country codes; this module validates them and names them.

UK is accepted for GB because people type it. Display names exist for the countries that probe
agents and users commonly come from; any other valid code is shown as the code itself.
"""

from __future__ import annotations

# All officially assigned ISO 3166-1 alpha-2 codes (249).
_ISO_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR "
    "BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ "
    "EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW "
    "GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY "
    "KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV "
    "MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG "
    "TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM "
    "ZW"
)
ISO_CODES: frozenset[str] = frozenset(_ISO_CODES.split())

_ALIASES = {"UK": "GB"}

# English names as they read inside a sentence ("down in Japan and the UK").
_NAMES_EN = {
    "US": "the US",
    "GB": "the UK",
    "JP": "Japan",
    "FR": "France",
    "DE": "Germany",
    "CA": "Canada",
    "AU": "Australia",
    "BR": "Brazil",
    "IN": "India",
    "ES": "Spain",
    "IT": "Italy",
    "NL": "the Netherlands",
    "SE": "Sweden",
    "PL": "Poland",
    "MX": "Mexico",
    "KR": "South Korea",
    "SG": "Singapore",
    "ZA": "South Africa",
    "IE": "Ireland",
    "BE": "Belgium",
    "CH": "Switzerland",
    "AT": "Austria",
    "PT": "Portugal",
    "NO": "Norway",
    "DK": "Denmark",
    "FI": "Finland",
    "AR": "Argentina",
    "CL": "Chile",
    "CO": "Colombia",
    "NZ": "New Zealand",
    "HK": "Hong Kong",
    "TW": "Taiwan",
    "TR": "Turkey",
    "RU": "Russia",
    "UA": "Ukraine",
    "ID": "Indonesia",
    "PH": "the Philippines",
    "TH": "Thailand",
    "VN": "Vietnam",
    "MY": "Malaysia",
    "NG": "Nigeria",
    "EG": "Egypt",
    "IL": "Israel",
    "AE": "the UAE",
    "SA": "Saudi Arabia",
    "CN": "China",
}
_NAMES_FR = {
    "US": "États-Unis",
    "GB": "Royaume-Uni",
    "JP": "Japon",
    "FR": "France",
    "DE": "Allemagne",
    "CA": "Canada",
    "AU": "Australie",
    "BR": "Brésil",
    "IN": "Inde",
    "ES": "Espagne",
    "IT": "Italie",
    "NL": "Pays-Bas",
    "SE": "Suède",
    "PL": "Pologne",
    "MX": "Mexique",
    "KR": "Corée du Sud",
    "SG": "Singapour",
    "ZA": "Afrique du Sud",
    "IE": "Irlande",
    "BE": "Belgique",
    "CH": "Suisse",
    "AT": "Autriche",
    "PT": "Portugal",
    "NO": "Norvège",
    "DK": "Danemark",
    "FI": "Finlande",
    "CN": "Chine",
}
_NAMES = {"en": _NAMES_EN, "fr": _NAMES_FR}


def normalize_region(text: str) -> str | None:
    """The canonical code for ``text`` ("uk" -> "GB"), or None if it is not a country code."""
    code = text.strip().upper()
    code = _ALIASES.get(code, code)
    return code if code in ISO_CODES else None


def region_name(code: str, lang: str = "en") -> str:
    """The display name of a region in ``lang``, falling back to English, then to the code."""
    return _NAMES.get(lang, {}).get(code) or _NAMES_EN.get(code) or code


# The first Discord/Slack locale subtag that implies a country, for the default /report region.
_LOCALE_REGIONS = {
    "en-US": "US",
    "en-GB": "GB",
    "ja": "JP",
    "fr": "FR",
    "de": "DE",
    "es-ES": "ES",
    "pt-BR": "BR",
    "it": "IT",
    "nl": "NL",
    "sv-SE": "SE",
    "pl": "PL",
    "ko": "KR",
    "da": "DK",
    "fi": "FI",
    "no": "NO",
    "tr": "TR",
    "uk": "UA",
    "ru": "RU",
    "hi": "IN",
    "th": "TH",
    "vi": "VN",
    "id": "ID",
    "zh-TW": "TW",
    "zh-CN": "CN",
}


def region_from_locale(locale: str | None) -> str | None:
    """A best guess of the user's country from a chat locale such as ``en-GB`` or ``ja``."""
    if not locale:
        return None
    if locale in _LOCALE_REGIONS:
        return _LOCALE_REGIONS[locale]
    if "-" in locale:
        return normalize_region(locale.rsplit("-", 1)[1])
    return None
