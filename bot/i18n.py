"""Every user-visible string, in one catalog per language, and the function that renders a Message.

Handlers and the verdict return ``Message(key, **params)``, never finished text, so each adapter
renders in the user's language. English is complete; a missing key in another language falls back
to English, and a missing English key is a bug that the catalog test catches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.regions import region_name


@dataclass(frozen=True, slots=True)
class RegionList:
    """Region codes that render as a joined list of names: "Japan and the UK"."""

    codes: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.codes)


@dataclass(frozen=True, slots=True, init=False)
class Message:
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, key: str, /, **params: Any) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "params", params)


EN: dict[str, str] = {
    # verdict headlines
    "headline.unknown": "No recent evidence about {name}: no probes, reports or status page data.",
    "headline.maintenance": "{name} is under maintenance. {note}",
    "headline.down": "{name} is down for everyone: failing in {regions}.",
    "headline.down_official": "{name} is down, says its official status page: {status}",
    "headline.regional": "{name} is down in {regions}; it works in {ok}.",
    "headline.regional_only": "{name} fails from {regions}; no other region is checking it.",
    "headline.user_reports": (
        "Probes pass, but users report problems with {name}, mostly {problem} ({share}%)."
    ),
    "headline.user_reports_no_probes": (
        "Users report problems with {name}, mostly {problem} ({share}%); no probes confirm it."
    ),
    "headline.slow": "{name} is up but slow in {regions}.",
    "headline.degraded_official": "{name} works for our probes, but its status page reports: {status}",
    "headline.up_no_probes": "No unusual reports about {name}. If it fails for you, it is probably on your side.",
    "headline.up": "{name} is up everywhere we check. If it fails for you, it is probably on your side.",
    # verdict notes
    "note.targets_split": "Failing: {broken}. Working: {working}.",
    "note.status": "Official status: {status}",
    "note.status_disagrees": "Official status: {status} (it disagrees with what we see)",
    "note.probe_failed": "From {region}: {detail}",
    "note.works_for_me": "{count} people said it works for them.",
    "note.works_for_me.one": "1 person said it works for them.",
    # categories, states and problems as shown in tables
    "category.up": "Up",
    "category.user_reports": "User reports",
    "category.regional": "Regional outage",
    "category.down": "Down",
    "category.degraded": "Degraded",
    "category.maintenance": "Maintenance",
    "category.unknown": "Unknown",
    "state.ok": "ok",
    "state.slow": "slow",
    "state.user_reports": "reports",
    "state.partial": "partial",
    "state.down": "down",
    "state.no_data": "no data",
    "target.ok": "ok",
    "target.slow": "slow",
    "target.regional": "failing in {regions}",
    "target.down": "down",
    "target.no_data": "no data",
    "problem.website": "website",
    "problem.app": "app",
    "problem.login": "login",
    "problem.notifications": "notifications",
    "problem.api": "API",
    "problem.other": "other",
    "level.none": "usual",
    "level.possible": "above usual",
    "level.problems": "problems",
    # table headings
    "col.region": "Region",
    "col.state": "State",
    "col.probes": "Probes ok/failed",
    "col.latency": "Latency",
    "col.reports": "Reports (usual)",
    "col.works_for_me": "Works for me",
    "col.target": "Target",
    "col.problem": "Problem",
    "col.share": "Share",
    "freshness": "Probes {probes} · reports {reports} · status {status} · as of {at}",
    "age.never": "none",
    "age.seconds": "{n}s ago",
    "age.minutes": "{n} min ago",
    "age.hours": "{n} h ago",
    "age.days": "{n} d ago",
    "chart.title": "{name}: user reports, last 24 h",
    # buttons
    "button.report": "I have a problem",
    "button.works": "Works for me",
    "button.recheck": "Re-check",
    "button.subscribe": "Subscribe this channel",
    # /report, /worksforme
    "report.counted": "Thanks: your {problem} report about {name} from {region} counts toward the verdict.",
    "report.comment": "You already reported {name} in the last {minutes} minutes; we kept this as a comment.",
    "report.capped": "Thanks: we kept your report. Enough reports about {name} came from this server already, so it does not count again.",
    "report.rate_limited": "You sent many reports in the last hour. Please wait a while before reporting again.",
    "wfm.counted": "Thanks: noted that {name} works for you in {region}.",
    "wfm.duplicate": "You already said {name} works for you in the last {minutes} minutes.",
    # /services and /help
    "services.title": "Services I know ({count})",
    "services.line": "{name} (`{key}`){aliases}",
    "services.aliases": ", also: {aliases}",
    "services.more": "+{n} more",
    "help.title": "outagebot: is it down, or is it just me?",
    "help.intro": "I combine probes from several regions, reports from people like you, 'works for me' confirmations and the official status page.",
    "help.line": "{usage}: {description}",
    "cmd.isitdown": "Is a service down, or is it just you?",
    "cmd.report": "Report a problem with a service",
    "cmd.worksforme": "Say a service works for you",
    "cmd.services": "List the services I know",
    "cmd.help": "How to use outagebot",
    "cmd.agents": "Probe agents: regions, last contact, lag (admins)",
    "agents.title": "Probe agents: {connected} of {total} connected",
    "agents.none": "No probe agents have connected yet. Start one with: outagebot agent --region JP --core URL --key-env VAR",
    "agents.line": "{id} ({region}): seen {seen}, lag {lag}, {rate} results/s",
    "agents.line_gone": "{id} ({region}): NOT CONNECTED, last seen {seen}",
    "error.probes_off": "Probing is off on this bot ([probes] enabled = false), so there are no agents.",
    "param.service": "Service name, alias or URL",
    "param.problem": "What is broken: website, app, login, notifications, api or other",
    "param.region": "Country code, e.g. US, GB, JP (default: yours)",
    "param.note": "A short note (optional)",
    # errors: each says what was wrong and what to type
    "error.unknown_command": "I don't know /{command}. Try /help.",
    "error.missing": "Missing {param}. Usage: {usage}",
    "error.too_long": "{param} is too long (at most {limit} characters). Usage: {usage}",
    "error.control": "{param} contains control characters; type plain text. Usage: {usage}",
    "error.empty": "{param} is empty. Usage: {usage}",
    "error.too_many_args": "Too many words. Usage: {usage}",
    "error.unknown_service": "I don't know a service called “{query}”. Did you mean {suggestions}? See /services.",
    "error.unknown_service_nosuggest": "I don't know a service called “{query}”. See /services for the list.",
    "error.unknown_region": "“{value}” is not a country code. Use two letters such as US, GB, JP or FR.",
    "error.unknown_problem": "“{value}” is not a problem type. Use one of: {choices}.",
    "error.url_refused": "I can't check {url}: {reason}. Try a public http:// or https:// address.",
    "error.url_not_supported": "Checking a URL that is not in the catalog needs probes, which are not running here. Try a service name; see /services.",
    "error.admin_only": "Only server admins can use /{command}.",
    "error.storage": "I could not reach my database just now. Nothing was changed; please try again in a minute.",
    "error.internal": "Something went wrong on my side. Nothing was changed; please try again.",
    # plain-text and console rendering (bot/textrender.py, bot/adapters/console.py)
    "render.verdict": "{category}: {headline}",
    "render.latency": "{ms} ms",
    "render.target": "{target}: {state}",
    "render.targets": "Targets: {items}",
    "render.share": "{problem} {share}%",
    "render.problems": "Problems reported: {items}",
    "render.chart": "Reports, last 24 h: {spark} (peak {peak} per {minutes} min)",
    "render.next": "Next: {items}",
    "console.hint": "Commands start with /, try /help",
    "console.chart_saved": "Chart saved to {path}",
    "console.chart_failed": "Could not save the chart to {path}: {reason}",
    "error.unbalanced_quotes": "A quote is not closed. Usage: {usage}",
    # tenant services and settings (commands/service_*.py, commands/region_default.py)
    "cmd.service_add": "Watch a service of your own in this server (admins)",
    "cmd.service_edit": "Change a service this server added (admins)",
    "cmd.service_remove": "Remove a service this server added, and its history (admins)",
    "cmd.region_default": "Set this server's default region for reports (admins)",
    "param.key": "Short key: lowercase letters, digits and dashes, e.g. intranet",
    "param.url": "The address to check, e.g. https://status.example.com/",
    "param.name": "The name people see, e.g. Our Intranet",
    "param.aliases": "Other names, separated by commas (optional)",
    "param.default_region": "Country code, e.g. US, GB, JP",
    "service.added": "Added {name}: I'll check {url} from every region. Try /isitdown {key}.",
    "service.edited": "Updated {name} ({url}).",
    "service.removed": "Removed {name} and everything recorded about it.",
    "service.bad_key": "“{key}” can't be a key: use 1 to 32 lowercase letters, digits and dashes, starting with a letter or digit, e.g. intranet.",
    "service.exists": "This server already has a service with key {key}. Use /service edit to change it.",
    "service.limit": "This server already watches {limit} services of its own, the most allowed. Remove one with /service remove first.",
    "service.url_required": "Give the address to check, e.g. /service add intranet https://intranet.example.com/",
    "service.not_found": "This server has no service of its own with key {key}. /services lists them.",
    "service.bad_name": "The name must be 1 to {limit} characters.",
    "service.url_refused": "I can't check {url}: {reason}. Give a public http:// or https:// address.",
    "service.bad_aliases": "Give at most {limit} other names, each at most 64 characters, separated by commas.",
    "service.name_taken": "“{word}” already names {other}. Pick another name or alias.",
    "service.dm": "Services of your own belong to a server or workspace; use this command there, not in a direct message.",
    "region.default_set": "Reports here now default to {region} when people don't give one and their language doesn't say.",
    "region.dm": "The default region belongs to a server or workspace; use this command there.",
    "services.own_title": "This server's own services ({count})",
    # alerts and subscriptions (bot/alerts.py, bot/outbox.py, commands/subscribe.py ...)
    "raw": "{text}",
    "alert.opened": "🔴 {name}: {category}",
    "alert.updated": "🟠 {name}: {category} (update)",
    "alert.resolved": "✅ {name}: resolved after {duration}",
    "alert.resolved_line": "{name} works again everywhere we check (it was: {category}).",
    "alert.more": "Details: /isitdown {key}",
    "duration.days": "{d} d {h} h",
    "duration.hours": "{h} h {m} min",
    "duration.minutes": "{m} min",
    "cmd.subscribe": "Get alerts here about a service, a tag or everything",
    "cmd.unsubscribe": "Stop alerts here about a service, a tag or everything",
    "cmd.subscriptions": "What this channel (or server, for admins) is subscribed to",
    "param.subject": "A service, a tag (e.g. carriers-us) or all",
    "param.level": "down, regional or user_reports (default: regional)",
    "param.channel": "Which channel (default: this one)",
    "subscribe.added": "Subscribed {channel} to {subject} at level {level}: one message per incident, updated in place.",
    "subscribe.changed": "{channel} was already subscribed to {subject}; the level is now {level}.",
    "subscribe.removed": "Unsubscribed {channel} from {subject}.",
    "subscribe.not_found": "{channel} is not subscribed to {subject}. /subscriptions lists what it is.",
    "subscribe.bad_level": "“{value}” is not a level. Use down (outages only), regional (also regional ones) or user_reports (also crowd reports).",
    "subscribe.bad_subject": "I don't know a service or tag called “{value}”. Use a service name, a tag such as {tags}, or all.",
    "subscribe.admin_only": "Only server admins can change a channel's subscriptions; you can subscribe your direct messages with me.",
    "subscribe.bad_channel": "“{value}” is not a channel. Mention one (#channel) or leave it out for this one.",
    "subscriptions.none": "No subscriptions here yet. Try /subscribe all regional.",
    "subscriptions.title": "Subscriptions ({count})",
    "subscriptions.line": "{channel}: {subject} at level {level}",
    "subscriptions.dead_title": "Alerts that could not be delivered (last 7 days): {count}",
    "subscriptions.dead_line": "{channel}: {kind} ({error})",
    "subject.all": "everything",
    "subject.tag": "tag {tag}",
    "subscribe.channel_here": "Run this command in the channel you want to change: I can only be sure a channel belongs to this server from inside it.",
    "digest.title_daily": "Daily digest, {period}",
    "digest.title_weekly": "Weekly digest, {period}",
    "digest.incidents": "Incidents ({count}):",
    "digest.incident": "• {name}: {category} for {duration} ({regions})",
    "digest.incident_open": "• {name}: {category}, still open after {duration} ({regions})",
    "digest.all_clear": "All clear: no incidents among the {count} services this channel follows.",
    "digest.availability": "Probes passed, lowest first:",
    "digest.availability_line": "• {name}: {share} ({regions})",
    "digest.top": "Most reported: {items}",
    "digest.status_disagreed": "The official status page said all was well during outages of: {names}",
    "digest.dead": "{count} alerts could not be delivered; admins see them with /subscriptions.",
    "digest.chart": "Reports per hour (incidents shaded)",
    "cmd.digest": "When this channel gets its digest (daily or weekly, time, timezone)",
    "param.time": "HH:MM, or off",
    "param.day": "daily, or mon ... sun for a weekly digest",
    "param.timezone": "An IANA timezone, e.g. Europe/Paris",
    "digest.set": "{channel} gets its digest {when}. Next: {next}.",
    "digest.daily": "daily at {time} ({timezone})",
    "digest.weekly": "every {day} at {time} ({timezone})",
    "digest.off": "{channel} gets no digest now. /digest 09:00 turns it back on.",
    "digest.none": "{channel} has no subscriptions, so no digest. Try /subscribe all first.",
    "digest.bad_time": "“{value}” is not a time. Use HH:MM (24-hour), e.g. 09:00, or off.",
    "digest.bad_day": "“{value}” is not a day. Use daily, or mon, tue, wed, thu, fri, sat or sun.",
    "digest.bad_timezone": "“{value}” is not a timezone. Use an IANA name such as Europe/Paris or America/New_York.",
    "cmd.maintenance": "Declare or end a maintenance window for one of this server's services (admins)",
    "ops.degraded": "⚠️ outagebot is degraded: {what} failed on its database ({error}). Verdicts may be stale; this is not a service outage. I keep retrying and will say when it works again.",
    "ops.recovered": "✅ outagebot recovered: {what} works again.",
    "param.duration": "How long: 30m, 2h, 1d (at most 7 d), or end",
    "maintenance.declared": "{name} is under maintenance for the next {minutes} min: incidents are recorded but no alerts go out.",
    "maintenance.ended": "Maintenance of {name} ended now.",
    "maintenance.none": "{name} has no maintenance window to end.",
    "maintenance.bad_duration": "“{value}” is not a duration. Use 30m, 2h or 1d (at most 7 days), or end.",
    "maintenance.shared": "{name} is shared by every server: only the bot's operator declares its maintenance (its status page announces it, and I read that). Use /maintenance for this server's own services.",
    # discord adapter
    "discord.more": "+{n} more",
    "discord.pick_problem": "What is broken? Pick one:",
    "discord.group": "/{name} commands",
    # slack adapter (bot/adapters/slack/)
    "slack.header": "{name}: {category}",
    "slack.more": "+{n} more",
    "slack.error.subcommand": "Say what to do. Usage: {usage}",
    "slack.error.guest": "Guests cannot use /{command}; ask a workspace admin.",
    "slack.error.button": "I can't read this button (it may be from an older version of me). Type the command instead; see /help.",
    "slack.home.title": "outagebot",
    "slack.home.intro": "Is it down, or is it just me? Type /isitdown and a service name in any channel; /help lists every command.",
}

FR: dict[str, str] = {
    "headline.unknown": "Aucune information récente sur {name} : ni sondes, ni signalements, ni page de statut.",
    "headline.down": "{name} est en panne pour tout le monde : échec depuis {regions}.",
    "headline.regional": "{name} est en panne depuis {regions} ; fonctionne depuis {ok}.",
    "headline.user_reports": "Les sondes passent, mais des utilisateurs signalent des problèmes avec {name}, surtout {problem} ({share} %).",
    "headline.up": "{name} fonctionne partout où nous vérifions. Si ça échoue chez vous, le problème est probablement de votre côté.",
    # tenant services and settings (commands/service_*.py, commands/region_default.py)
    "cmd.service_add": "Surveiller un service à vous sur ce serveur (admins)",
    "cmd.service_edit": "Modifier un service ajouté par ce serveur (admins)",
    "cmd.service_remove": "Retirer un service ajouté par ce serveur, et son historique (admins)",
    "cmd.region_default": "Choisir la région par défaut des signalements sur ce serveur (admins)",
    "param.key": "Clé courte : minuscules, chiffres et tirets, p. ex. intranet",
    "param.url": "L'adresse à vérifier, p. ex. https://status.example.com/",
    "param.name": "Le nom affiché, p. ex. Notre intranet",
    "param.aliases": "Autres noms, séparés par des virgules (facultatif)",
    "param.default_region": "Code pays, p. ex. US, GB, JP",
    "service.added": "{name} ajouté : je vérifierai {url} depuis chaque région. Essayez /isitdown {key}.",
    "service.edited": "{name} mis à jour ({url}).",
    "service.removed": "{name} retiré, avec tout ce qui avait été enregistré à son sujet.",
    "service.bad_key": "« {key} » ne peut pas servir de clé : 1 à 32 minuscules, chiffres et tirets, en commençant par une lettre ou un chiffre, p. ex. intranet.",
    "service.exists": "Ce serveur a déjà un service de clé {key}. Utilisez /service edit pour le modifier.",
    "service.limit": "Ce serveur surveille déjà {limit} services à lui, le maximum. Retirez-en un avec /service remove d'abord.",
    "service.url_required": "Donnez l'adresse à vérifier, p. ex. /service add intranet https://intranet.example.com/",
    "service.not_found": "Ce serveur n'a pas de service à lui de clé {key}. /services les liste.",
    "service.bad_name": "Le nom doit faire de 1 à {limit} caractères.",
    "service.url_refused": "Je ne peux pas vérifier {url} : {reason}. Donnez une adresse http:// ou https:// publique.",
    "service.bad_aliases": "Donnez au plus {limit} autres noms, de 64 caractères au plus, séparés par des virgules.",
    "service.name_taken": "« {word} » désigne déjà {other}. Choisissez un autre nom ou alias.",
    "service.dm": "Les services à vous appartiennent à un serveur ou un espace de travail ; utilisez cette commande là-bas, pas en message privé.",
    "region.default_set": "Les signalements d'ici seront désormais attribués à {region} quand ni la personne ni sa langue ne l'indiquent.",
    "region.dm": "La région par défaut appartient à un serveur ou un espace de travail ; utilisez cette commande là-bas.",
    "services.own_title": "Les services de ce serveur ({count})",
    "alert.opened": "🔴 {name} : {category}",
    "alert.updated": "🟠 {name} : {category} (mise à jour)",
    "alert.resolved": "✅ {name} : résolu après {duration}",
    "alert.resolved_line": "{name} fonctionne de nouveau partout où nous vérifions (c'était : {category}).",
    "alert.more": "Détails : /isitdown {key}",
    "duration.days": "{d} j {h} h",
    "duration.hours": "{h} h {m} min",
    "duration.minutes": "{m} min",
    "cmd.subscribe": "Recevoir ici les alertes d'un service, d'un tag ou de tout",
    "cmd.unsubscribe": "Ne plus recevoir ici les alertes d'un service, d'un tag ou de tout",
    "cmd.subscriptions": "Les abonnements de ce salon (ou du serveur, pour les admins)",
    "param.subject": "Un service, un tag (p. ex. carriers-us) ou all",
    "param.level": "down, regional ou user_reports (par défaut : regional)",
    "param.channel": "Quel salon (par défaut : celui-ci)",
    "subscribe.added": "{channel} est abonné à {subject} au niveau {level} : un message par incident, mis à jour sur place.",
    "subscribe.changed": "{channel} était déjà abonné à {subject} ; le niveau est maintenant {level}.",
    "subscribe.removed": "{channel} n'est plus abonné à {subject}.",
    "subscribe.not_found": "{channel} n'est pas abonné à {subject}. /subscriptions liste ses abonnements.",
    "subscribe.bad_level": "« {value} » n'est pas un niveau. Utilisez down (pannes seulement), regional (aussi régionales) ou user_reports (aussi signalements).",
    "subscribe.bad_subject": "Je ne connais ni service ni tag « {value} ». Donnez un service, un tag comme {tags}, ou all.",
    "subscribe.admin_only": "Seuls les admins du serveur peuvent changer les abonnements d'un salon ; vous pouvez abonner vos messages privés avec moi.",
    "subscribe.bad_channel": "« {value} » n'est pas un salon. Mentionnez-en un (#salon) ou omettez-le pour celui-ci.",
    "subscriptions.none": "Aucun abonnement ici pour l'instant. Essayez /subscribe all regional.",
    "subscriptions.title": "Abonnements ({count})",
    "subscriptions.line": "{channel} : {subject} au niveau {level}",
    "subscriptions.dead_title": "Alertes non distribuées (7 derniers jours) : {count}",
    "subscriptions.dead_line": "{channel} : {kind} ({error})",
    "subject.all": "tout",
    "subject.tag": "tag {tag}",
    "subscribe.channel_here": "Lancez cette commande dans le salon à modifier : je ne peux être sûr qu'un salon appartient à ce serveur que depuis l'intérieur.",
    "digest.title_daily": "Résumé du jour, {period}",
    "digest.title_weekly": "Résumé de la semaine, {period}",
    "digest.incidents": "Incidents ({count}) :",
    "digest.incident": "• {name} : {category} pendant {duration} ({regions})",
    "digest.incident_open": "• {name} : {category}, toujours en cours après {duration} ({regions})",
    "digest.all_clear": "Rien à signaler : aucun incident parmi les {count} services suivis ici.",
    "digest.availability": "Sondes réussies, du plus bas au plus haut :",
    "digest.availability_line": "• {name} : {share} ({regions})",
    "digest.top": "Les plus signalés : {items}",
    "digest.status_disagreed": "La page de statut officielle disait que tout allait bien pendant les pannes de : {names}",
    "digest.dead": "{count} alertes n'ont pas pu être distribuées ; les admins les voient avec /subscriptions.",
    "digest.chart": "Signalements par heure (incidents grisés)",
    "cmd.digest": "Quand ce salon reçoit son résumé (quotidien ou hebdomadaire, heure, fuseau)",
    "param.time": "HH:MM, ou off",
    "param.day": "daily, ou mon ... sun pour un résumé hebdomadaire",
    "param.timezone": "Un fuseau IANA, p. ex. Europe/Paris",
    "digest.set": "{channel} reçoit son résumé {when}. Prochain : {next}.",
    "digest.daily": "chaque jour à {time} ({timezone})",
    "digest.weekly": "chaque {day} à {time} ({timezone})",
    "digest.off": "{channel} ne reçoit plus de résumé. /digest 09:00 le remet en place.",
    "digest.none": "{channel} n'a pas d'abonnement, donc pas de résumé. Essayez d'abord /subscribe all.",
    "digest.bad_time": "« {value} » n'est pas une heure. Utilisez HH:MM (sur 24 h), p. ex. 09:00, ou off.",
    "digest.bad_day": "« {value} » n'est pas un jour. Utilisez daily, ou mon, tue, wed, thu, fri, sat ou sun.",
    "digest.bad_timezone": "« {value} » n'est pas un fuseau horaire. Utilisez un nom IANA comme Europe/Paris.",
    "cmd.maintenance": "Déclarer ou terminer une maintenance d'un service de ce serveur (admins)",
    "ops.degraded": "⚠️ outagebot fonctionne en mode dégradé : {what} a échoué sur sa base de données ({error}). Les verdicts peuvent être périmés ; ce n'est pas une panne de service. Je réessaie et préviendrai quand cela remarchera.",
    "ops.recovered": "✅ outagebot est rétabli : {what} fonctionne de nouveau.",
    "param.duration": "Durée : 30m, 2h, 1d (7 j au plus), ou end",
    "maintenance.declared": "{name} est en maintenance pour {minutes} min : les incidents sont enregistrés, sans alerte.",
    "maintenance.ended": "La maintenance de {name} est terminée.",
    "maintenance.none": "{name} n'a pas de maintenance en cours à terminer.",
    "maintenance.bad_duration": "« {value} » n'est pas une durée. Utilisez 30m, 2h ou 1d (7 jours au plus), ou end.",
    "maintenance.shared": "{name} est partagé par tous les serveurs : seul l'opérateur du bot déclare ses maintenances (sa page de statut les annonce, et je la lis). Utilisez /maintenance pour les services propres à ce serveur.",
    # discord adapter: its own messages, and the command, option and choice descriptions that
    # Discord shows in French through its localizations (each at most 100 characters)
    "discord.more": "+{n} de plus",
    "discord.pick_problem": "Qu'est-ce qui ne marche pas ? Choisissez :",
    "discord.group": "Commandes /{name}",
    "cmd.isitdown": "Un service est-il en panne, ou est-ce juste chez vous ?",
    "cmd.report": "Signaler un problème avec un service",
    "cmd.worksforme": "Dire qu'un service fonctionne chez vous",
    "cmd.services": "Lister les services que je connais",
    "cmd.help": "Comment utiliser outagebot",
    "cmd.agents": "Agents de sonde : régions, dernier contact, retard (admins)",
    "param.service": "Nom du service, alias ou URL",
    "param.problem": "Ce qui ne marche pas : site web, appli, connexion, notifications, API ou autre",
    "param.region": "Code pays, p. ex. US, GB, JP (par défaut : le vôtre)",
    "param.note": "Une courte remarque (facultative)",
    "problem.website": "site web",
    "problem.app": "appli",
    "problem.login": "connexion",
    "problem.notifications": "notifications",
    "problem.api": "API",
    "problem.other": "autre",
    "button.report": "J'ai un problème",
    "button.works": "Ça marche chez moi",
    "button.recheck": "Revérifier",
    "button.subscribe": "Abonner ce salon",
    # slack adapter (bot/adapters/slack/)
    "slack.header": "{name} : {category}",
    "slack.more": "+{n} de plus",
    "slack.error.subcommand": "Précisez quoi faire. Utilisation : {usage}",
    "slack.error.guest": "Les invités ne peuvent pas utiliser /{command} ; demandez à un administrateur de l'espace de travail.",
    "slack.error.button": "Je ne sais pas lire ce bouton (il vient peut-être d'une ancienne version). Tapez plutôt la commande ; voir /help.",
    "slack.home.title": "outagebot",
    "slack.home.intro": "En panne, ou juste chez moi ? Tapez /isitdown et le nom d'un service dans n'importe quel canal ; /help liste toutes les commandes.",
}

CATALOGS: dict[str, dict[str, str]] = {"en": EN, "fr": FR}
_AND = {"en": " and ", "fr": " et "}


def render(message: Message, lang: str = "en") -> str:
    """``message`` in ``lang`` (falling back to English), with its parameters filled in.

    A key may have a ``.one`` variant, used when the ``count`` parameter is 1.
    """
    key = message.key
    if message.params.get("count") == 1 and f"{key}.one" in EN:
        key = f"{key}.one"
    template = CATALOGS.get(lang, EN).get(key) or EN[key]
    params = {k: _param(v, lang) for k, v in message.params.items()}
    return template.format(**params).strip()


def text(key: str, lang: str = "en", **params: Any) -> str:
    return render(Message(key, **params), lang)


def _param(value: Any, lang: str) -> Any:
    if isinstance(value, RegionList):
        return join_names([region_name(c, lang) for c in value.codes], lang)
    if isinstance(value, Message):
        return render(value, lang)
    return value


def join_names(names: list[str], lang: str = "en") -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + _AND.get(lang, " and ") + names[-1]
