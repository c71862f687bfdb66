<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de" sourcelanguage="en">
    <context>
        <name>app.actions</name>
        <message>
            <source>Sign-in failed</source>
            <translation>Anmeldung fehlgeschlagen</translation>
        </message>
        <message>
            <source>Sign-out failed</source>
            <translation>Abmeldung fehlgeschlagen</translation>
        </message>
        <message>
            <source>Could not connect</source>
            <translation>Verbindung nicht möglich</translation>
        </message>
        <message>
            <source>Could not disconnect</source>
            <translation>Trennen nicht möglich</translation>
        </message>
        <message>
            <source>Could not quit</source>
            <translation>Beenden nicht möglich</translation>
        </message>
        <message>
            <source>Device check failed</source>
            <translation>Geräteprüfung fehlgeschlagen</translation>
        </message>
        <message>
            <source>Could not start Rustronaut</source>
            <translation>Rustronaut konnte nicht starten</translation>
        </message>
        <message>
            <source>Still offline</source>
            <translation>Weiterhin offline</translation>
        </message>
        <message>
            <source>Rustronaut could not do that.</source>
            <translation>Rustronaut konnte das nicht ausführen.</translation>
        </message>
        <message>
            <source>Rustronaut could not open a web browser for the sign-in. Choose “Use a code instead” in the sign-in window.</source>
            <translation>Rustronaut konnte keinen Webbrowser für die Anmeldung öffnen. Wählen Sie im Anmeldefenster „Stattdessen Code verwenden“.</translation>
        </message>
        <message>
            <source>Rustronaut is still starting; try again in a moment.</source>
            <translation>Rustronaut startet noch; versuchen Sie es gleich erneut.</translation>
        </message>
        <message>
            <source>No web browser</source>
            <translation>Kein Webbrowser</translation>
        </message>
        <message>
            <source>Could not save diagnostics: {error}</source>
            <translation>Diagnosedaten konnten nicht gespeichert werden: {error}</translation>
        </message>
        <message>
            <source>Start at login is not supported on this system.</source>
            <translation>Start bei der Anmeldung wird auf diesem System nicht unterstützt.</translation>
        </message>
        <message>
            <source>Could not change start at login: {error}</source>
            <translation>Start bei der Anmeldung konnte nicht geändert werden: {error}</translation>
        </message>
    </context>
    <context>
        <name>app.activity_model</name>
        <message>
            <source>Time</source>
            <translation>Zeit</translation>
        </message>
        <message>
            <source>App</source>
            <translation>App</translation>
        </message>
        <message>
            <source>Destination</source>
            <translation>Ziel</translation>
        </message>
        <message>
            <source>Decision</source>
            <translation>Entscheidung</translation>
        </message>
        <message>
            <source>Rule</source>
            <translation>Regel</translation>
        </message>
        <message>
            <source>Reason</source>
            <translation>Grund</translation>
        </message>
        <message>
            <source>unknown app</source>
            <translation>unbekannte App</translation>
        </message>
        <message>
            <source>default deny</source>
            <translation>standardmäßig abgelehnt</translation>
        </message>
        <message>
            <source>Allowed</source>
            <translation>Erlaubt</translation>
        </message>
        <message>
            <source>Denied</source>
            <translation>Abgelehnt</translation>
        </message>
        <message>
            <source>Risk {risk}: {signals}</source>
            <translation>Risiko {risk}: {signals}</translation>
        </message>
    </context>
    <context>
        <name>app.autostart</name>
        <message>
            <source>Zero-trust access to your work resources</source>
            <translation>Zero-Trust-Zugriff auf Ihre Arbeitsressourcen</translation>
        </message>
    </context>
    <context>
        <name>app.main</name>
        <message>
            <source>Reinstall Rustronaut or contact IT.</source>
            <translation>Installieren Sie Rustronaut neu oder wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The Rustronaut engine is not installed ({module} is missing).</source>
            <translation>Die Rustronaut-Engine ist nicht installiert ({module} fehlt).</translation>
        </message>
        <message>
            <source>Rustronaut could not reach your organisation's controller.</source>
            <translation>Rustronaut konnte den Controller Ihrer Organisation nicht erreichen.</translation>
        </message>
        <message>
            <source>Check your network connection, then choose Retry. If it keeps failing, tell IT.</source>
            <translation>Prüfen Sie Ihre Netzwerkverbindung und wählen Sie dann „Erneut versuchen“. Wenn es weiterhin fehlschlägt, informieren Sie die IT.</translation>
        </message>
        <message>
            <source>Rustronaut could not start: {reason}</source>
            <translation>Rustronaut konnte nicht starten: {reason}</translation>
        </message>
        <message>
            <source>Rustronaut could not open its local connection for the command line: {reason}</source>
            <translation>Rustronaut konnte seine lokale Verbindung für die Befehlszeile nicht öffnen: {reason}</translation>
        </message>
        <message>
            <source>Rustronaut is already running; its window was brought forward.</source>
            <translation>Rustronaut läuft bereits; sein Fenster wurde in den Vordergrund geholt.</translation>
        </message>
        <message>
            <source>Rustronaut is already running.</source>
            <translation>Rustronaut läuft bereits.</translation>
        </message>
        <message>
            <source>Rustronaut is already running; it opened the join link for you.</source>
            <translation>Rustronaut läuft bereits und hat den Beitrittslink für Sie geöffnet.</translation>
        </message>
        <message>
            <source>Rustronaut is already running and did not use the join link; it shows why.</source>
            <translation>Rustronaut läuft bereits und hat den Beitrittslink nicht verwendet; dort sehen Sie, warum.</translation>
        </message>
        <message>
            <source>Rustronaut is already running and refused the join link; it shows why.</source>
            <translation>Rustronaut läuft bereits und hat den Beitrittslink abgelehnt; dort sehen Sie, warum.</translation>
        </message>
        <message>
            <source>Rustronaut is already running but cannot take the join link yet. Open the link again in a moment.</source>
            <translation>Rustronaut läuft bereits, kann den Beitrittslink aber noch nicht übernehmen. Öffnen Sie den Link gleich noch einmal.</translation>
        </message>
        <message>
            <source>Join link not used</source>
            <translation>Beitrittslink nicht verwendet</translation>
        </message>
        <message>
            <source>Rustronaut is already set up</source>
            <translation>Rustronaut ist bereits eingerichtet</translation>
        </message>
        <message>
            <source>Your organisation manages Rustronaut's settings, so the join link was not used.</source>
            <translation>Ihre Organisation verwaltet die Einstellungen von Rustronaut, daher wurde der Beitrittslink nicht verwendet.</translation>
        </message>
        <message>
            <source>Rustronaut could not use the join link while it is starting. Open the link again once it has started.</source>
            <translation>Rustronaut konnte den Beitrittslink während des Starts nicht verwenden. Öffnen Sie den Link erneut, sobald Rustronaut gestartet ist.</translation>
        </message>
        <message>
            <source>Rustronaut already uses the controller this link names: {url}</source>
            <translation>Rustronaut verwendet bereits den Controller aus diesem Link: {url}</translation>
        </message>
        <message>
            <source>Rustronaut already uses the controller {current}, so the join link for {url} was not used. To change organisation, ask IT.</source>
            <translation>Rustronaut verwendet bereits den Controller {current}, daher wurde der Beitrittslink für {url} nicht verwendet. Um die Organisation zu wechseln, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Rustronaut — Starting…</source>
            <translation>Rustronaut — Wird gestartet…</translation>
        </message>
    </context>
    <context>
        <name>app.notify</name>
        <message>
            <source>Sign in again to reach your work resources.</source>
            <translation>Melden Sie sich erneut an, um Ihre Arbeitsressourcen zu erreichen.</translation>
        </message>
        <message>
            <source>To fix: {fix}</source>
            <translation>So beheben Sie es: {fix}</translation>
        </message>
        <message>
            <source>Every resource is blocked until this device is fixed.</source>
            <translation>Alle Ressourcen sind gesperrt, bis dieses Gerät in Ordnung ist.</translation>
        </message>
        <message>
            <source>Connected — access blocked</source>
            <translation>Verbunden — Zugriff gesperrt</translation>
        </message>
        <message>
            <source>Access was withdrawn.</source>
            <translation>Der Zugriff wurde entzogen.</translation>
        </message>
        <message>
            <source>Access to {name} withdrawn</source>
            <translation>Zugriff auf {name} entzogen</translation>
        </message>
        <message>
            <source>Sign-in needed</source>
            <translation>Anmeldung nötig</translation>
        </message>
        <message>
            <source>Connected</source>
            <translation>Verbunden</translation>
        </message>
        <message>
            <source>No work resources are assigned to you yet.</source>
            <translation>Ihnen sind noch keine Arbeitsressourcen zugewiesen.</translation>
        </message>
        <message>
            <source>Your work resources are reachable.</source>
            <translation>Ihre Arbeitsressourcen sind erreichbar.</translation>
        </message>
        <message numerus="yes">
            <source>{reachable} of %n work resources are reachable.</source>
            <translation>
                <numerusform>{reachable} von %n Arbeitsressource ist erreichbar.</numerusform>
                <numerusform>{reachable} von %n Arbeitsressourcen sind erreichbar.</numerusform>
            </translation>
        </message>
        <message>
            <source>{name} is blocked: {reason}</source>
            <translation>{name} ist gesperrt: {reason}</translation>
        </message>
        <message>
            <source>{name} is blocked.</source>
            <translation>{name} ist gesperrt.</translation>
        </message>
        <message>
            <source>Connected — some access blocked</source>
            <translation>Verbunden — teilweise gesperrt</translation>
        </message>
        <message>
            <source>Sign-in expires soon</source>
            <translation>Anmeldung läuft bald ab</translation>
        </message>
        <message numerus="yes">
            <source>Your sign-in ends in %n min. Click to extend it.</source>
            <translation>
                <numerusform>Ihre Anmeldung endet in %n min. Zum Verlängern klicken.</numerusform>
                <numerusform>Ihre Anmeldung endet in %n min. Zum Verlängern klicken.</numerusform>
            </translation>
        </message>
        <message>
            <source>Your sign-in has ended</source>
            <translation>Ihre Anmeldung ist abgelaufen</translation>
        </message>
        <message>
            <source>Diagnostics saved</source>
            <translation>Diagnosedaten gespeichert</translation>
        </message>
        <message>
            <source>Saved to {path}
Click to show it in its folder, then send it to IT.</source>
            <translation>Gespeichert unter {path}
Klicken, um sie im Ordner zu zeigen; dann an die IT senden.</translation>
        </message>
        <message>
            <source>Diagnostics not saved</source>
            <translation>Diagnosedaten nicht gespeichert</translation>
        </message>
    </context>
    <context>
        <name>app.presenter</name>
        <message>
            <source>Signed out</source>
            <translation>Abgemeldet</translation>
        </message>
        <message>
            <source>Signing in…</source>
            <translation>Anmeldung läuft…</translation>
        </message>
        <message>
            <source>Registering this device…</source>
            <translation>Gerät wird registriert…</translation>
        </message>
        <message>
            <source>Checking this device…</source>
            <translation>Gerät wird geprüft…</translation>
        </message>
        <message>
            <source>Connecting…</source>
            <translation>Verbinde…</translation>
        </message>
        <message>
            <source>Connected</source>
            <translation>Verbunden</translation>
        </message>
        <message>
            <source>Connected — some access blocked</source>
            <translation>Verbunden — teilweise gesperrt</translation>
        </message>
        <message>
            <source>Connected — access blocked</source>
            <translation>Verbunden — Zugriff gesperrt</translation>
        </message>
        <message>
            <source>Offline — using last policy</source>
            <translation>Offline — letzte Richtlinie gilt</translation>
        </message>
        <message>
            <source>Reconnecting — the gateway stopped answering</source>
            <translation>Verbindung wird wiederhergestellt — Gateway antwortet nicht mehr</translation>
        </message>
        <message>
            <source>Disconnecting…</source>
            <translation>Trenne…</translation>
        </message>
        <message>
            <source>Not connected</source>
            <translation>Nicht verbunden</translation>
        </message>
        <message>
            <source>Problem</source>
            <translation>Problem</translation>
        </message>
        <message>
            <source>Starting…</source>
            <translation>Startet…</translation>
        </message>
        <message>
            <source>Rustronaut is not running</source>
            <translation>Rustronaut läuft nicht</translation>
        </message>
        <message>
            <source>Choose Restart Rustronaut to start it again.</source>
            <translation>Wählen Sie „Rustronaut neu starten“, um es wieder zu starten.</translation>
        </message>
        <message>
            <source>Start the Rustronaut helper service (or reinstall Rustronaut), then Connect again.</source>
            <translation>Starten Sie den Rustronaut-Hilfsdienst (oder installieren Sie Rustronaut neu) und verbinden Sie dann erneut.</translation>
        </message>
        <message>
            <source>Try again. If it keeps happening, collect diagnostics and contact IT.</source>
            <translation>Versuchen Sie es erneut. Passiert es wieder, sammeln Sie Diagnosedaten und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Runs inside this app: quitting it disconnects.</source>
            <translation>Läuft in dieser App: Beenden trennt die Verbindung.</translation>
        </message>
        <message>
            <source>Kept by the Rustronaut agent: it stays up when you quit this app.</source>
            <translation>Vom Rustronaut-Agent gehalten: bleibt bestehen, wenn Sie diese App beenden.</translation>
        </message>
        <message>
            <source>Kept by the rustronaut command: it stays up when you quit this app.</source>
            <translation>Vom Befehl rustronaut gehalten: bleibt bestehen, wenn Sie diese App beenden.</translation>
        </message>
        <message>
            <source>Not running.</source>
            <translation>Läuft nicht.</translation>
        </message>
        <message>
            <source>Problem: {title}</source>
            <translation>Problem: {title}</translation>
        </message>
        <message>
            <source>Connected via relay {relay}</source>
            <translation>Verbunden über Relay {relay}</translation>
        </message>
        <message>
            <source>No way through this network</source>
            <translation>Kein Weg durch dieses Netzwerk</translation>
        </message>
        <message>
            <source>Encrypted relay {relay}</source>
            <translation>Verschlüsseltes Relay {relay}</translation>
        </message>
        <message>
            <source>Direct (UDP)</source>
            <translation>Direkt (UDP)</translation>
        </message>
        <message>
            <source>This network lets neither WireGuard's UDP nor a relay through. Try another network (a phone hotspot, for example); if it keeps happening, contact IT.</source>
            <translation>Dieses Netzwerk lässt weder das UDP von WireGuard noch ein Relay durch. Versuchen Sie ein anderes Netzwerk (zum Beispiel einen Handy-Hotspot); wenn es wieder passiert, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>This device cannot use a relay yet (it has no relay certificate). Stay connected to the internet: it gets one from your organization shortly.</source>
            <translation>Dieses Gerät kann noch kein Relay nutzen (es hat kein Relay-Zertifikat). Bleiben Sie mit dem Internet verbunden: Es erhält in Kürze eines von Ihrer Organisation.</translation>
        </message>
        <message>
            <source>WireGuard's UDP stopped getting through on this network.</source>
            <translation>Das UDP von WireGuard kommt in diesem Netzwerk nicht mehr durch.</translation>
        </message>
        <message>
            <source>The previous relay stopped answering.</source>
            <translation>Das bisherige Relay antwortet nicht mehr.</translation>
        </message>
        <message>
            <source>This network blocks WireGuard's UDP.</source>
            <translation>Dieses Netzwerk blockiert das UDP von WireGuard.</translation>
        </message>
        <message>
            <source>Your traffic is carried over an encrypted relay; it may be slower. We switch back automatically.</source>
            <translation>Ihr Datenverkehr läuft über ein verschlüsseltes Relay; das kann langsamer sein. Wir wechseln automatisch zurück.</translation>
        </message>
        <message>
            <source>{size} B</source>
            <translation>{size} B</translation>
        </message>
        <message>
            <source>{size} KiB</source>
            <translation>{size} KiB</translation>
        </message>
        <message>
            <source>{size} MiB</source>
            <translation>{size} MiB</translation>
        </message>
        <message>
            <source>{size} GiB</source>
            <translation>{size} GiB</translation>
        </message>
        <message>
            <source>never</source>
            <translation>nie</translation>
        </message>
        <message numerus="yes">
            <source>%n s ago</source>
            <translation>
                <numerusform>vor %n s</numerusform>
                <numerusform>vor %n s</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n min ago</source>
            <translation>
                <numerusform>vor %n min</numerusform>
                <numerusform>vor %n min</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n h ago</source>
            <translation>
                <numerusform>vor %n h</numerusform>
                <numerusform>vor %n h</numerusform>
            </translation>
        </message>
        <message>
            <source>No tunnel</source>
            <translation>Kein Tunnel</translation>
        </message>
        <message>
            <source>{gateway} via {interface} · handshake {age} · ↓ {received} ↑ {sent}</source>
            <translation>{gateway} über {interface} · Handshake {age} · ↓ {received} ↑ {sent}</translation>
        </message>
        <message>
            <source>Every app reaches company resources directly — no proxy settings needed</source>
            <translation>Alle Apps erreichen Firmenressourcen direkt — keine Proxy-Einstellungen nötig</translation>
        </message>
        <message>
            <source>the local proxy</source>
            <translation>der lokale Proxy</translation>
        </message>
        <message>
            <source>Apps reach company resources through the proxy {address} (SOCKS5 or HTTP)</source>
            <translation>Apps erreichen Firmenressourcen über den Proxy {address} (SOCKS5 oder HTTP)</translation>
        </message>
        <message>
            <source>this computer cannot redirect other apps</source>
            <translation>dieser Computer kann andere Apps nicht umleiten</translation>
        </message>
        <message>
            <source>names under {suffixes} resolve through the tunnel</source>
            <translation>Namen unter {suffixes} werden über den Tunnel aufgelöst</translation>
        </message>
        <message>
            <source>this network's route {routes} is overridden: company traffic still goes only through the tunnel</source>
            <translation>Route {routes} dieses Netzwerks wird übersteuert: Firmenverkehr läuft weiterhin nur durch den Tunnel</translation>
        </message>
        <message>
            <source>Managed configuration rejected — {reason}</source>
            <translation>Verwaltete Konfiguration abgelehnt — {reason}</translation>
        </message>
        <message>
            <source>Rustronaut — {state}</source>
            <translation>Rustronaut — {state}</translation>
        </message>
        <message>
            <source>Signed in as {user} ({organization})</source>
            <translation>Angemeldet als {user} ({organization})</translation>
        </message>
        <message>
            <source>Signed in as {user}</source>
            <translation>Angemeldet als {user}</translation>
        </message>
        <message>
            <source>Every resource is blocked</source>
            <translation>Alle Ressourcen sind gesperrt</translation>
        </message>
        <message numerus="yes">
            <source>{reachable} of %n resources reachable</source>
            <translation>
                <numerusform>{reachable} von %n Ressource erreichbar</numerusform>
                <numerusform>{reachable} von %n Ressourcen erreichbar</numerusform>
            </translation>
        </message>
        <message>
            <source>{problem}: {detail} — your last policy stays in force</source>
            <translation>{problem}: {detail} — Ihre letzte Richtlinie bleibt gültig</translation>
        </message>
        <message>
            <source>Why:</source>
            <translation>Warum:</translation>
        </message>
        <message>
            <source>To fix:</source>
            <translation>So beheben Sie es:</translation>
        </message>
        <message>
            <source>Your organization's policy blocks it.</source>
            <translation>Die Richtlinie Ihrer Organisation sperrt dies.</translation>
        </message>
        <message>
            <source>No resources yet</source>
            <translation>Noch keine Ressourcen</translation>
        </message>
        <message>
            <source>{name} — reachable</source>
            <translation>{name} — erreichbar</translation>
        </message>
        <message>
            <source>{name} — not connected</source>
            <translation>{name} — nicht verbunden</translation>
        </message>
        <message>
            <source>blocked</source>
            <translation>gesperrt</translation>
        </message>
        <message>
            <source>{name} — {reason}</source>
            <translation>{name} — {reason}</translation>
        </message>
        <message>
            <source>Open Rustronaut</source>
            <translation>Rustronaut öffnen</translation>
        </message>
        <message>
            <source>About Rustronaut</source>
            <translation>Über Rustronaut</translation>
        </message>
        <message>
            <source>Quit</source>
            <translation>Beenden</translation>
        </message>
        <message>
            <source>Restart Rustronaut</source>
            <translation>Rustronaut neu starten</translation>
        </message>
        <message>
            <source>Open Rustronaut to see why.</source>
            <translation>Öffnen Sie Rustronaut, um den Grund zu sehen.</translation>
        </message>
        <message>
            <source>Retry now</source>
            <translation>Jetzt erneut versuchen</translation>
        </message>
        <message>
            <source>Extend sign-in…</source>
            <translation>Anmeldung verlängern…</translation>
        </message>
        <message>
            <source>Managed configuration rejected</source>
            <translation>Verwaltete Konfiguration abgelehnt</translation>
        </message>
        <message>
            <source>Sign in…</source>
            <translation>Anmelden…</translation>
        </message>
        <message>
            <source>Disconnect</source>
            <translation>Trennen</translation>
        </message>
        <message>
            <source>Disconnect (break-glass)…</source>
            <translation>Trennen (Notfallzugang)…</translation>
        </message>
        <message>
            <source>Disconnect (not allowed)</source>
            <translation>Trennen (nicht erlaubt)</translation>
        </message>
        <message>
            <source>Your organization keeps this connection always on.</source>
            <translation>Ihre Organisation hält diese Verbindung immer aktiv.</translation>
        </message>
        <message>
            <source>Connect</source>
            <translation>Verbinden</translation>
        </message>
        <message>
            <source>Resources</source>
            <translation>Ressourcen</translation>
        </message>
        <message>
            <source>Posture</source>
            <translation>Gerätezustand</translation>
        </message>
        <message>
            <source>Activity</source>
            <translation>Aktivität</translation>
        </message>
        <message>
            <source>Settings</source>
            <translation>Einstellungen</translation>
        </message>
        <message>
            <source>Collect diagnostics…</source>
            <translation>Diagnosedaten sammeln…</translation>
        </message>
        <message>
            <source>Sign out</source>
            <translation>Abmelden</translation>
        </message>
    </context>
    <context>
        <name>app.tray</name>
        <message>
            <source>Rustronaut menu</source>
            <translation>Rustronaut-Menü</translation>
        </message>
    </context>
    <context>
        <name>app.tray_app</name>
        <message>
            <source>No system tray was found on this desktop, so Rustronaut shows this window instead. Closing it keeps you connected; start Rustronaut again to come back here. On GNOME, the AppIndicator extension adds the tray icon.</source>
            <translation>Auf diesem Desktop gibt es keinen Infobereich, daher zeigt Rustronaut stattdessen dieses Fenster. Wenn Sie es schließen, bleiben Sie verbunden; starten Sie Rustronaut erneut, um hierher zurückzukehren. Unter GNOME fügt die Erweiterung AppIndicator das Symbol im Infobereich hinzu.</translation>
        </message>
        <message>
            <source>Start at login</source>
            <translation>Bei Anmeldung starten</translation>
        </message>
        <message>
            <source>Start Rustronaut when you log in?</source>
            <translation>Rustronaut bei der Anmeldung starten?</translation>
        </message>
        <message>
            <source>It then reconnects you to your work resources after each login. You can change this later in Settings.</source>
            <translation>Es verbindet Sie dann nach jeder Anmeldung wieder mit Ihren Arbeitsressourcen. Sie können das später in den Einstellungen ändern.</translation>
        </message>
    </context>
    <context>
        <name>app.widgets</name>
        <message>
            <source>Get help</source>
            <translation>Hilfe holen</translation>
        </message>
        <message>
            <source>Open the help page</source>
            <translation>Hilfeseite öffnen</translation>
        </message>
        <message>
            <source>Open the sign-in page</source>
            <translation>Anmeldeseite öffnen</translation>
        </message>
        <message>
            <source>Set by your organization ({organization})</source>
            <translation>Von Ihrer Organisation festgelegt ({organization})</translation>
        </message>
        <message>
            <source>Set by your organization</source>
            <translation>Von Ihrer Organisation festgelegt</translation>
        </message>
        <message>
            <source>Locked</source>
            <translation>Gesperrt</translation>
        </message>
        <message>
            <source>{title} — Rustronaut</source>
            <translation>{title} — Rustronaut</translation>
        </message>
    </context>
    <context>
        <name>app.windows.about</name>
        <message>
            <source>System</source>
            <translation>System</translation>
        </message>
        <message>
            <source>unknown</source>
            <translation>unbekannt</translation>
        </message>
        <message>
            <source>Off: nothing about your connections is sent</source>
            <translation>Aus: Über Ihre Verbindungen wird nichts gesendet</translation>
        </message>
        <message>
            <source>Counts only: how many connections to each resource were allowed or denied</source>
            <translation>Nur Anzahlen: wie viele Verbindungen zu jeder Ressource erlaubt oder abgelehnt wurden</translation>
        </message>
        <message>
            <source>Every decision: time, destination, rule and reason; apps only as a hash</source>
            <translation>Jede Entscheidung: Zeit, Ziel, Regel und Grund; Apps nur als Hash</translation>
        </message>
        <message>
            <source>Every decision: time, app, destination, rule and reason</source>
            <translation>Jede Entscheidung: Zeit, App, Ziel, Regel und Grund</translation>
        </message>
        <message>
            <source>About</source>
            <translation>Über</translation>
        </message>
        <message>
            <source>Rustronaut logo</source>
            <translation>Rustronaut-Logo</translation>
        </message>
        <message>
            <source>Zero-trust access to your work resources</source>
            <translation>Zero-Trust-Zugriff auf Ihre Arbeitsressourcen</translation>
        </message>
        <message>
            <source>Versions</source>
            <translation>Versionen</translation>
        </message>
        <message>
            <source>{name}:</source>
            <translation>{name}:</translation>
        </message>
        <message>
            <source>Policy:</source>
            <translation>Richtlinie:</translation>
        </message>
        <message>
            <source>Device:</source>
            <translation>Gerät:</translation>
        </message>
        <message>
            <source>Session:</source>
            <translation>Sitzung:</translation>
        </message>
        <message>
            <source>Reports to IT:</source>
            <translation>Berichte an die IT:</translation>
        </message>
        <message>
            <source>Support</source>
            <translation>Support</translation>
        </message>
        <message>
            <source>Diagnostics</source>
            <translation>Diagnosedaten</translation>
        </message>
        <message>
            <source>Save a diagnostics file for your support team. It holds logs and settings, never your passwords, tokens or keys.</source>
            <translation>Speichern Sie eine Diagnosedatei für Ihr Support-Team. Sie enthält Protokolle und Einstellungen, nie Ihre Kennwörter, Tokens oder Schlüssel.</translation>
        </message>
        <message>
            <source>&amp;Save diagnostics…</source>
            <translation>Diagnosedaten &amp;speichern…</translation>
        </message>
        <message>
            <source>Save diagnostics</source>
            <translation>Diagnosedaten speichern</translation>
        </message>
        <message>
            <source>Write the diagnostics zip to Downloads</source>
            <translation>Diagnose-ZIP in Downloads speichern</translation>
        </message>
        <message>
            <source>&amp;Copy versions</source>
            <translation>Versionen &amp;kopieren</translation>
        </message>
        <message>
            <source>Copy versions</source>
            <translation>Versionen kopieren</translation>
        </message>
        <message>
            <source>Copy the version list to the clipboard</source>
            <translation>Versionsliste in die Zwischenablage kopieren</translation>
        </message>
        <message>
            <source>version {version}</source>
            <translation>Version {version}</translation>
        </message>
        <message>
            <source>none yet</source>
            <translation>noch keine</translation>
        </message>
        <message>
            <source>not registered</source>
            <translation>nicht registriert</translation>
        </message>
        <message>
            <source>your organization</source>
            <translation>Ihre Organisation</translation>
        </message>
        <message>
            <source>Need help? Contact {org}: {url}</source>
            <translation>Brauchen Sie Hilfe? Wenden Sie sich an {org}: {url}</translation>
        </message>
        <message>
            <source>Need help? Contact the IT team of {org}.</source>
            <translation>Brauchen Sie Hilfe? Wenden Sie sich an das IT-Team von {org}.</translation>
        </message>
        <message>
            <source>Saving diagnostics…</source>
            <translation>Diagnosedaten werden gespeichert…</translation>
        </message>
        <message>
            <source>Saved to {path}</source>
            <translation>Gespeichert unter {path}</translation>
        </message>
    </context>
    <context>
        <name>app.windows.activity</name>
        <message>
            <source>low</source>
            <translation>niedrig</translation>
        </message>
        <message>
            <source>elevated</source>
            <translation>erhöht</translation>
        </message>
        <message>
            <source>high</source>
            <translation>hoch</translation>
        </message>
        <message>
            <source>Risk {score} / 100 ({level})</source>
            <translation>Risiko {score} / 100 ({level})</translation>
        </message>
        <message>
            <source>Risk {score} / 100 ({level}): {signals}</source>
            <translation>Risiko {score} / 100 ({level}): {signals}</translation>
        </message>
        <message>
            <source>, </source>
            <comment>between risk signals</comment>
            <translation>, </translation>
        </message>
        <message>
            <source>Activity</source>
            <translation>Aktivität</translation>
        </message>
        <message>
            <source>Every connection your apps made through Rustronaut, and why it was allowed or denied.</source>
            <translation>Jede Verbindung Ihrer Apps über Rustronaut und warum sie erlaubt oder abgelehnt wurde.</translation>
        </message>
        <message>
            <source>Filter by app, destination, rule or reason</source>
            <translation>Nach App, Ziel, Regel oder Grund filtern</translation>
        </message>
        <message>
            <source>Filter</source>
            <translation>Filter</translation>
        </message>
        <message>
            <source>Show only decisions containing this text</source>
            <translation>Nur Entscheidungen mit diesem Text anzeigen</translation>
        </message>
        <message>
            <source>All decisions</source>
            <translation>Alle Entscheidungen</translation>
        </message>
        <message>
            <source>Allowed</source>
            <translation>Erlaubt</translation>
        </message>
        <message>
            <source>Denied</source>
            <translation>Abgelehnt</translation>
        </message>
        <message>
            <source>Decision filter</source>
            <translation>Entscheidungsfilter</translation>
        </message>
        <message>
            <source>Show all, allowed or denied decisions</source>
            <translation>Alle, erlaubte oder abgelehnte Entscheidungen anzeigen</translation>
        </message>
        <message>
            <source>C&amp;lear</source>
            <translation>&amp;Leeren</translation>
        </message>
        <message>
            <source>Clear</source>
            <translation>Leeren</translation>
        </message>
        <message>
            <source>Forget the decisions shown</source>
            <translation>Angezeigte Entscheidungen verwerfen</translation>
        </message>
        <message>
            <source>&amp;Find:</source>
            <translation>&amp;Suchen:</translation>
        </message>
        <message>
            <source>Decisions</source>
            <translation>Entscheidungen</translation>
        </message>
        <message>
            <source>Time, app, destination, decision, rule and reason</source>
            <translation>Zeit, App, Ziel, Entscheidung, Regel und Grund</translation>
        </message>
        <message numerus="yes">
            <source>%n decisions</source>
            <translation>
                <numerusform>%n Entscheidung</numerusform>
                <numerusform>%n Entscheidungen</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>{shown} of %n decisions shown</source>
            <translation>
                <numerusform>{shown} von %n Entscheidung angezeigt</numerusform>
                <numerusform>{shown} von %n Entscheidungen angezeigt</numerusform>
            </translation>
        </message>
    </context>
    <context>
        <name>app.windows.breakglass</name>
        <message>
            <source>Disconnect</source>
            <translation>Trennen</translation>
        </message>
        <message>
            <source>Disconnect anyway?</source>
            <translation>Trotzdem trennen?</translation>
        </message>
        <message>
            <source>{org} keeps Rustronaut always connected to protect your work. Disconnecting is recorded and reported, together with your reason.</source>
            <translation>{org} hält Rustronaut immer verbunden, um Ihre Arbeit zu schützen. Das Trennen wird mit Ihrer Begründung protokolliert und gemeldet.</translation>
        </message>
        <message>
            <source>&amp;Disconnect</source>
            <translation>&amp;Trennen</translation>
        </message>
        <message>
            <source>For example: the hotel Wi-Fi portal needs the VPN off</source>
            <translation>Zum Beispiel: Das Hotel-WLAN-Portal verlangt, dass das VPN aus ist</translation>
        </message>
        <message>
            <source>Why you need to disconnect</source>
            <translation>Warum Sie trennen müssen</translation>
        </message>
        <message>
            <source>Sign out</source>
            <translation>Abmelden</translation>
        </message>
        <message>
            <source>Sign out anyway?</source>
            <translation>Trotzdem abmelden?</translation>
        </message>
        <message>
            <source>{org} keeps Rustronaut always connected to protect your work. Signing out disconnects this device; it is recorded and reported, together with your reason.</source>
            <translation>{org} hält Rustronaut immer verbunden, um Ihre Arbeit zu schützen. Das Abmelden trennt dieses Gerät; es wird mit Ihrer Begründung protokolliert und gemeldet.</translation>
        </message>
        <message>
            <source>&amp;Sign out</source>
            <translation>&amp;Abmelden</translation>
        </message>
        <message>
            <source>For example: handing this laptop to IT for repair</source>
            <translation>Zum Beispiel: Laptop geht zur Reparatur an die IT</translation>
        </message>
        <message>
            <source>Why you need to sign out</source>
            <translation>Warum Sie sich abmelden müssen</translation>
        </message>
        <message>
            <source>Quit</source>
            <translation>Beenden</translation>
        </message>
        <message>
            <source>Quit and disconnect?</source>
            <translation>Beenden und trennen?</translation>
        </message>
        <message>
            <source>{org} keeps Rustronaut always connected to protect your work. Rustronaut runs inside this app here, so quitting disconnects; it is recorded and reported, together with your reason.</source>
            <translation>{org} hält Rustronaut immer verbunden, um Ihre Arbeit zu schützen. Rustronaut läuft hier in dieser App, daher trennt das Beenden die Verbindung; es wird mit Ihrer Begründung protokolliert und gemeldet.</translation>
        </message>
        <message>
            <source>&amp;Quit</source>
            <translation>&amp;Beenden</translation>
        </message>
        <message>
            <source>For example: the video call drops while connected</source>
            <translation>Zum Beispiel: Der Videoanruf bricht ab, solange verbunden</translation>
        </message>
        <message>
            <source>Why you need to quit</source>
            <translation>Warum Sie beenden müssen</translation>
        </message>
        <message>
            <source>Your organization</source>
            <translation>Ihre Organisation</translation>
        </message>
        <message>
            <source>Reason</source>
            <translation>Begründung</translation>
        </message>
        <message>
            <source>&amp;Reason:</source>
            <translation>&amp;Begründung:</translation>
        </message>
        <message>
            <source>Stay &amp;connected</source>
            <translation>&amp;Verbunden bleiben</translation>
        </message>
        <message>
            <source>Stay connected</source>
            <translation>Verbunden bleiben</translation>
        </message>
        <message numerus="yes">
            <source>At least %n characters. {org} will see this reason.</source>
            <translation>
                <numerusform>Mindestens ein Zeichen. {org} sieht diese Begründung.</numerusform>
                <numerusform>Mindestens %n Zeichen. {org} sieht diese Begründung.</numerusform>
            </translation>
        </message>
    </context>
    <context>
        <name>app.windows.main_window</name>
        <message>
            <source>Reachable</source>
            <translation>Erreichbar</translation>
        </message>
        <message>
            <source>Blocked</source>
            <translation>Gesperrt</translation>
        </message>
        <message>
            <source>Not connected</source>
            <translation>Nicht verbunden</translation>
        </message>
        <message>
            <source>✓ Reachable</source>
            <translation>✓ Erreichbar</translation>
        </message>
        <message>
            <source>✕ Blocked</source>
            <translation>✕ Gesperrt</translation>
        </message>
        <message>
            <source>– Not connected</source>
            <translation>– Nicht verbunden</translation>
        </message>
        <message>
            <source>Connection state icon</source>
            <translation>Symbol für Verbindungsstatus</translation>
        </message>
        <message>
            <source>Sign-in</source>
            <translation>Anmeldung</translation>
        </message>
        <message>
            <source>Clock</source>
            <translation>Uhr</translation>
        </message>
        <message>
            <source>Managed configuration</source>
            <translation>Verwaltete Konfiguration</translation>
        </message>
        <message>
            <source>Controller</source>
            <translation>Controller</translation>
        </message>
        <message>
            <source>Policy trust</source>
            <translation>Richtlinienvertrauen</translation>
        </message>
        <message>
            <source>Problem</source>
            <translation>Problem</translation>
        </message>
        <message>
            <source>Access blocked</source>
            <translation>Zugriff gesperrt</translation>
        </message>
        <message>
            <source>How to fix access</source>
            <translation>So stellen Sie den Zugriff her</translation>
        </message>
        <message>
            <source>&amp;Posture</source>
            <translation>&amp;Gerätezustand</translation>
        </message>
        <message>
            <source>Open the Posture window</source>
            <translation>Fenster „Gerätezustand“ öffnen</translation>
        </message>
        <message>
            <source>&amp;Activity</source>
            <translation>&amp;Aktivität</translation>
        </message>
        <message>
            <source>Open the Activity window</source>
            <translation>Fenster „Aktivität“ öffnen</translation>
        </message>
        <message>
            <source>S&amp;ettings</source>
            <translation>&amp;Einstellungen</translation>
        </message>
        <message>
            <source>Open the Settings window</source>
            <translation>Fenster „Einstellungen“ öffnen</translation>
        </message>
        <message>
            <source>Tunnel</source>
            <translation>Tunnel</translation>
        </message>
        <message>
            <source>Transport</source>
            <translation>Übertragung</translation>
        </message>
        <message>
            <source>Why this transport</source>
            <translation>Warum diese Übertragung</translation>
        </message>
        <message>
            <source>Apps:</source>
            <translation>Apps:</translation>
        </message>
        <message>
            <source>Gateway:</source>
            <translation>Gateway:</translation>
        </message>
        <message>
            <source>Transport:</source>
            <translation>Übertragung:</translation>
        </message>
        <message>
            <source>Last handshake:</source>
            <translation>Letzter Handshake:</translation>
        </message>
        <message>
            <source>Traffic:</source>
            <translation>Datenverkehr:</translation>
        </message>
        <message>
            <source>Device:</source>
            <translation>Gerät:</translation>
        </message>
        <message>
            <source>Resources</source>
            <translation>Ressourcen</translation>
        </message>
        <message>
            <source>Resource</source>
            <translation>Ressource</translation>
        </message>
        <message>
            <source>Address</source>
            <translation>Adresse</translation>
        </message>
        <message>
            <source>Status</source>
            <translation>Status</translation>
        </message>
        <message>
            <source>Why / how to fix</source>
            <translation>Warum / So beheben Sie es</translation>
        </message>
        <message>
            <source>Each resource, whether it is reachable, and why</source>
            <translation>Jede Ressource, ob sie erreichbar ist und warum</translation>
        </message>
        <message>
            <source>Selected resource</source>
            <translation>Ausgewählte Ressource</translation>
        </message>
        <message>
            <source>Resource status</source>
            <translation>Ressourcenstatus</translation>
        </message>
        <message>
            <source>Resource address</source>
            <translation>Ressourcenadresse</translation>
        </message>
        <message>
            <source>Cop&amp;y address</source>
            <translation>Adresse &amp;kopieren</translation>
        </message>
        <message>
            <source>Copy address</source>
            <translation>Adresse kopieren</translation>
        </message>
        <message>
            <source>Copy the resource's address</source>
            <translation>Adresse der Ressource kopieren</translation>
        </message>
        <message>
            <source>Why</source>
            <translation>Warum</translation>
        </message>
        <message>
            <source>How to fix</source>
            <translation>So beheben Sie es</translation>
        </message>
        <message>
            <source>State: {state}</source>
            <translation>Status: {state}</translation>
        </message>
        <message>
            <source>Your session is unknown until Rustronaut runs again.</source>
            <translation>Ihre Sitzung ist unbekannt, bis Rustronaut wieder läuft.</translation>
        </message>
        <message>
            <source>Signed in as {user} at {organization}</source>
            <translation>Angemeldet als {user} bei {organization}</translation>
        </message>
        <message>
            <source>Signed in as {user}</source>
            <translation>Angemeldet als {user}</translation>
        </message>
        <message>
            <source>Not signed in. Sign in with your work account to reach resources.</source>
            <translation>Nicht angemeldet. Melden Sie sich mit Ihrem Arbeitskonto an, um Ressourcen zu erreichen.</translation>
        </message>
        <message>
            <source>Rustronaut is not running</source>
            <translation>Rustronaut läuft nicht</translation>
        </message>
        <message>
            <source>The Rustronaut service this window showed has stopped.

What to do: {next_step}</source>
            <translation>Der Rustronaut-Dienst, den dieses Fenster angezeigt hat, wurde beendet.

Was Sie tun können: {next_step}</translation>
        </message>
        <message>
            <source>{detail}

What to do: {next_step}</source>
            <translation>{detail}

Was Sie tun können: {next_step}</translation>
        </message>
        <message>
            <source>Connected, but every resource is blocked until this device is fixed.</source>
            <translation>Verbunden, aber alle Ressourcen sind gesperrt, bis die Probleme dieses Geräts behoben sind.</translation>
        </message>
        <message>
            <source>To fix: {fix}</source>
            <translation>Zur Behebung: {fix}</translation>
        </message>
        <message>
            <source>See each resource below for why.</source>
            <translation>Den Grund sehen Sie unten bei jeder Ressource.</translation>
        </message>
        <message>
            <source>↓ {received} received · ↑ {sent} sent</source>
            <translation>↓ {received} empfangen · ↑ {sent} gesendet</translation>
        </message>
        <message>
            <source>Not registered yet</source>
            <translation>Noch nicht registriert</translation>
        </message>
        <message>
            <source>Unknown</source>
            <translation>Unbekannt</translation>
        </message>
        <message>
            <source>Restart Rustronaut to see your resources</source>
            <translation>Starten Sie Rustronaut neu, um Ihre Ressourcen zu sehen</translation>
        </message>
        <message>
            <source>Connect to reach it</source>
            <translation>Verbinden Sie sich, um sie zu erreichen</translation>
        </message>
        <message>
            <source>No resources yet</source>
            <translation>Noch keine Ressourcen</translation>
        </message>
        <message>
            <source>Connect to load your policy</source>
            <translation>Verbinden Sie sich, um Ihre Richtlinie zu laden</translation>
        </message>
        <message>
            <source>Address: {address}</source>
            <translation>Adresse: {address}</translation>
        </message>
        <message>
            <source>Your organization's policy does not allow it.</source>
            <translation>Die Richtlinie Ihrer Organisation erlaubt dies nicht.</translation>
        </message>
        <message>
            <source>Rustronaut is not connected.</source>
            <translation>Rustronaut ist nicht verbunden.</translation>
        </message>
        <message>
            <source>Connect to reach it.</source>
            <translation>Verbinden Sie sich, um sie zu erreichen.</translation>
        </message>
        <message>
            <source>Why: {why}</source>
            <translation>Warum: {why}</translation>
        </message>
        <message>
            <source>How to fix: {fix}</source>
            <translation>So beheben Sie es: {fix}</translation>
        </message>
    </context>
    <context>
        <name>app.windows.onboarding</name>
        <message>
            <source>Enter your work email or your organisation's address</source>
            <translation>Geben Sie Ihre geschäftliche E-Mail-Adresse oder die Adresse Ihrer Organisation ein</translation>
        </message>
        <message>
            <source>Welcome</source>
            <translation>Willkommen</translation>
        </message>
        <message>
            <source>Rustronaut logo</source>
            <translation>Rustronaut-Logo</translation>
        </message>
        <message>
            <source>Welcome to Rustronaut</source>
            <translation>Willkommen bei Rustronaut</translation>
        </message>
        <message>
            <source>name@company.com</source>
            <translation>name@company.com</translation>
        </message>
        <message>
            <source>&amp;Find</source>
            <translation>&amp;Suchen</translation>
        </message>
        <message>
            <source>Status</source>
            <translation>Status</translation>
        </message>
        <message>
            <source>Your organisation's controller:</source>
            <translation>Controller Ihrer Organisation:</translation>
        </message>
        <message>
            <source>Controller address</source>
            <translation>Controller-Adresse</translation>
        </message>
        <message>
            <source>&amp;Use this controller</source>
            <translation>Diesen Controller &amp;verwenden</translation>
        </message>
        <message>
            <source>&amp;Change</source>
            <translation>Ä&amp;ndern</translation>
        </message>
        <message>
            <source>Type your work email or your organisation's address first.</source>
            <translation>Geben Sie zuerst Ihre geschäftliche E-Mail-Adresse oder die Adresse Ihrer Organisation ein.</translation>
        </message>
        <message>
            <source>Rustronaut could not do that.</source>
            <translation>Rustronaut konnte das nicht ausführen.</translation>
        </message>
        <message>
            <source>Try again.</source>
            <translation>Versuchen Sie es erneut.</translation>
        </message>
        <message>
            <source>Looking for your organisation's Rustronaut controller…</source>
            <translation>Rustronaut-Controller Ihrer Organisation wird gesucht…</translation>
        </message>
        <message>
            <source>Check that this is your organisation, then choose Use.</source>
            <translation>Prüfen Sie, ob dies Ihre Organisation ist, und wählen Sie dann „Verwenden“.</translation>
        </message>
    </context>
    <context>
        <name>app.windows.posture</name>
        <message>
            <source>Device posture</source>
            <translation>Gerätezustand</translation>
        </message>
        <message>
            <source>Your organization checks these before granting access. Fix any failed item, then choose Check again.</source>
            <translation>Ihre Organisation prüft diese Punkte vor dem Zugriff. Beheben Sie nicht bestandene Punkte und wählen Sie dann „Erneut prüfen“.</translation>
        </message>
        <message>
            <source>Check</source>
            <translation>Prüfung</translation>
        </message>
        <message>
            <source>Value</source>
            <translation>Wert</translation>
        </message>
        <message>
            <source>Status</source>
            <translation>Status</translation>
        </message>
        <message>
            <source>How to fix</source>
            <translation>So beheben Sie es</translation>
        </message>
        <message>
            <source>Required checks</source>
            <translation>Verlangte Prüfungen</translation>
        </message>
        <message>
            <source>Each check your policy requires, its result and how to fix it</source>
            <translation>Jede von Ihrer Richtlinie verlangte Prüfung, ihr Ergebnis und wie Sie sie beheben</translation>
        </message>
        <message>
            <source>Required by your policy</source>
            <translation>Von Ihrer Richtlinie verlangt</translation>
        </message>
        <message>
            <source>Selected check</source>
            <translation>Ausgewählte Prüfung</translation>
        </message>
        <message>
            <source>The selected check and how to fix it</source>
            <translation>Die ausgewählte Prüfung und wie Sie sie beheben</translation>
        </message>
        <message>
            <source>Fact</source>
            <translation>Angabe</translation>
        </message>
        <message>
            <source>For your information</source>
            <translation>Zur Information</translation>
        </message>
        <message>
            <source>What Rustronaut knows about this device; your policy does not require these</source>
            <translation>Was Rustronaut über dieses Gerät weiß; Ihre Richtlinie verlangt diese Angaben nicht</translation>
        </message>
        <message>
            <source>&amp;Check again</source>
            <translation>&amp;Erneut prüfen</translation>
        </message>
        <message>
            <source>Check again</source>
            <translation>Erneut prüfen</translation>
        </message>
        <message>
            <source>Collect the device posture again now</source>
            <translation>Gerätezustand jetzt erneut erfassen</translation>
        </message>
        <message>
            <source>{check}: {status} — {value}</source>
            <translation>{check}: {status} — {value}</translation>
        </message>
        <message>
            <source>How to fix: {fix}</source>
            <translation>So beheben Sie es: {fix}</translation>
        </message>
    </context>
    <context>
        <name>app.windows.settings</name>
        <message>
            <source>{setting} must be {expected}, not {value}.</source>
            <translation>{setting} muss {expected} sein, nicht {value}.</translation>
        </message>
        <message>
            <source>Settings</source>
            <translation>Einstellungen</translation>
        </message>
        <message>
            <source>Could not read the settings: {error}</source>
            <translation>Die Einstellungen konnten nicht gelesen werden: {error}</translation>
        </message>
        <message>
            <source>Your settings</source>
            <translation>Ihre Einstellungen</translation>
        </message>
        <message>
            <source>Advanced</source>
            <translation>Erweitert</translation>
        </message>
        <message>
            <source>This computer</source>
            <translation>Dieser Computer</translation>
        </message>
        <message>
            <source>Start Rustronaut when I log in</source>
            <translation>Rustronaut bei Anmeldung am Computer starten</translation>
        </message>
        <message>
            <source>Start at login</source>
            <translation>Bei Systemanmeldung starten</translation>
        </message>
        <message>
            <source>your organization</source>
            <translation>Ihre Organisation</translation>
        </message>
        <message>
            <source>Settings with a padlock are managed by {organization}.</source>
            <translation>Einstellungen mit Schloss verwaltet {organization}.</translation>
        </message>
        <message>
            <source>Hide advanced settings</source>
            <translation>Erweiterte Einstellungen ausblenden</translation>
        </message>
        <message>
            <source>Show advanced settings</source>
            <translation>Erweiterte Einstellungen einblenden</translation>
        </message>
        <message>
            <source>{setting}:</source>
            <translation>{setting}:</translation>
        </message>
        <message>
            <source>Set by your organization. {description}</source>
            <translation>Von Ihrer Organisation festgelegt. {description}</translation>
        </message>
        <message>
            <source>On</source>
            <translation>An</translation>
        </message>
        <message>
            <source>(none)</source>
            <translation>(keine)</translation>
        </message>
    </context>
    <context>
        <name>app.windows.signin</name>
        <message>
            <source>{detail}

What to do: {next_step}</source>
            <translation>{detail}

Was tun: {next_step}</translation>
        </message>
        <message>
            <source>Sign in</source>
            <translation>Anmelden</translation>
        </message>
        <message>
            <source>Rustronaut logo</source>
            <translation>Rustronaut-Logo</translation>
        </message>
        <message>
            <source>Sign in to Rustronaut</source>
            <translation>Bei Rustronaut anmelden</translation>
        </message>
        <message>
            <source>Signing in</source>
            <translation>Anmeldung läuft</translation>
        </message>
        <message>
            <source>Waiting for the browser sign-in to finish</source>
            <translation>Warten auf Abschluss der Anmeldung im Browser</translation>
        </message>
        <message>
            <source>Browser did not open?</source>
            <translation>Browser nicht geöffnet?</translation>
        </message>
        <message>
            <source>Open the sign-in page again, or copy its link and paste it into your browser.</source>
            <translation>Öffnen Sie die Anmeldeseite erneut oder kopieren Sie den Link und fügen Sie ihn in Ihren Browser ein.</translation>
        </message>
        <message>
            <source>Cop&amp;y link</source>
            <translation>Link &amp;kopieren</translation>
        </message>
        <message>
            <source>Copy link</source>
            <translation>Link kopieren</translation>
        </message>
        <message>
            <source>Copy the sign-in page's link to the clipboard</source>
            <translation>Link der Anmeldeseite in die Zwischenablage kopieren</translation>
        </message>
        <message>
            <source>&amp;Open again</source>
            <translation>&amp;Erneut öffnen</translation>
        </message>
        <message>
            <source>Open again</source>
            <translation>Erneut öffnen</translation>
        </message>
        <message>
            <source>Open the sign-in page in your browser again</source>
            <translation>Anmeldeseite erneut im Browser öffnen</translation>
        </message>
        <message>
            <source>Sign in on another device</source>
            <translation>Auf einem anderen Gerät anmelden</translation>
        </message>
        <message>
            <source>&amp;Copy code</source>
            <translation>Code &amp;kopieren</translation>
        </message>
        <message>
            <source>Copy code</source>
            <translation>Code kopieren</translation>
        </message>
        <message>
            <source>Copy the sign-in code to the clipboard</source>
            <translation>Anmeldecode in die Zwischenablage kopieren</translation>
        </message>
        <message>
            <source>Sign-in failed</source>
            <translation>Anmeldung fehlgeschlagen</translation>
        </message>
        <message>
            <source>Sign in with &amp;browser</source>
            <translation>Mit &amp;Browser anmelden</translation>
        </message>
        <message>
            <source>Sign in with browser</source>
            <translation>Mit Browser anmelden</translation>
        </message>
        <message>
            <source>Opens your web browser to sign in</source>
            <translation>Öffnet Ihren Webbrowser zur Anmeldung</translation>
        </message>
        <message>
            <source>Use a &amp;code instead</source>
            <translation>Stattdessen &amp;Code verwenden</translation>
        </message>
        <message>
            <source>Use a code instead</source>
            <translation>Stattdessen Code verwenden</translation>
        </message>
        <message>
            <source>Sign in on another device with a one-time code</source>
            <translation>Mit einem Einmalcode auf einem anderen Gerät anmelden</translation>
        </message>
        <message>
            <source>Cancel sign-&amp;in</source>
            <translation>&amp;Anmeldung abbrechen</translation>
        </message>
        <message>
            <source>Cancel sign-in</source>
            <translation>Anmeldung abbrechen</translation>
        </message>
        <message>
            <source>Stop waiting for this sign-in</source>
            <translation>Nicht länger auf diese Anmeldung warten</translation>
        </message>
        <message>
            <source>C&amp;lose</source>
            <translation>&amp;Schließen</translation>
        </message>
        <message>
            <source>Close</source>
            <translation>Schließen</translation>
        </message>
        <message>
            <source>Your password is entered only on your organization's sign-in page.</source>
            <translation>Ihr Kennwort geben Sie nur auf der Anmeldeseite Ihrer Organisation ein.</translation>
        </message>
        <message>
            <source>On a phone or computer, open {page} and enter:</source>
            <translation>Öffnen Sie auf einem Telefon oder Computer {page} und geben Sie ein:</translation>
        </message>
        <message>
            <source>Sign-in code {code}</source>
            <translation>Anmeldecode {code}</translation>
        </message>
        <message>
            <source>You're signed in</source>
            <translation>Sie sind angemeldet</translation>
        </message>
        <message>
            <source>Signed in as {user}. You can close this window.</source>
            <translation>Angemeldet als {user}. Sie können dieses Fenster schließen.</translation>
        </message>
        <message>
            <source>Finish signing in</source>
            <translation>Anmeldung abschließen</translation>
        </message>
        <message>
            <source>Enter the code below on another device.</source>
            <translation>Geben Sie den folgenden Code auf einem anderen Gerät ein.</translation>
        </message>
        <message>
            <source>Complete sign-in in your browser. This window updates when you are done.</source>
            <translation>Schließen Sie die Anmeldung im Browser ab. Dieses Fenster aktualisiert sich danach.</translation>
        </message>
        <message>
            <source>Sign in with your work account to reach your organization's resources. Your browser opens for sign-in; if this device has no browser, use a code.</source>
            <translation>Melden Sie sich mit Ihrem Arbeitskonto an, um die Ressourcen Ihrer Organisation zu erreichen. Zur Anmeldung öffnet sich Ihr Browser; hat dieses Gerät keinen Browser, verwenden Sie einen Code.</translation>
        </message>
        <message>
            <source>Try &amp;again</source>
            <translation>&amp;Erneut versuchen</translation>
        </message>
        <message>
            <source>Link copied. Paste it into your browser's address bar.</source>
            <translation>Link kopiert. Fügen Sie ihn in die Adressleiste Ihres Browsers ein.</translation>
        </message>
    </context>
    <context>
        <name>app.windows.startup_error</name>
        <message>
            <source>&amp;Retry</source>
            <translation>&amp;Wiederholen</translation>
        </message>
        <message>
            <source>&amp;Quit</source>
            <translation>&amp;Beenden</translation>
        </message>
    </context>
    <context>
        <name>core.auth.errors</name>
        <message>
            <source>Sign-in failed</source>
            <translation>Anmeldung fehlgeschlagen</translation>
        </message>
        <message>
            <source>Try again; if it keeps failing, contact your IT support.</source>
            <translation>Versuchen Sie es erneut; wenn es weiterhin fehlschlägt, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Sign-in is not set up correctly</source>
            <translation>Die Anmeldung ist nicht richtig eingerichtet</translation>
        </message>
        <message>
            <source>Check the OIDC issuer and client id in the settings (or ask IT).</source>
            <translation>Prüfen Sie OIDC-Issuer und Client-ID in den Einstellungen (oder fragen Sie die IT).</translation>
        </message>
        <message>
            <source>The sign-in service could not be used</source>
            <translation>Der Anmeldedienst konnte nicht verwendet werden</translation>
        </message>
        <message>
            <source>The sign-in service did not answer</source>
            <translation>Der Anmeldedienst hat nicht geantwortet</translation>
        </message>
        <message>
            <source>Check your network connection and try again in a moment.</source>
            <translation>Prüfen Sie Ihre Netzwerkverbindung und versuchen Sie es gleich noch einmal.</translation>
        </message>
        <message>
            <source>The connection to the sign-in service could not be verified</source>
            <translation>Die Verbindung zum Anmeldedienst konnte nicht überprüft werden</translation>
        </message>
        <message>
            <source>Check this computer's date and time. If your network inspects HTTPS traffic, ask IT to install the inspector's certificate on this computer.</source>
            <translation>Prüfen Sie Datum und Uhrzeit dieses Computers. Wenn Ihr Netzwerk HTTPS-Verkehr prüft, bitten Sie die IT, das Zertifikat der Prüfstelle auf diesem Computer zu installieren.</translation>
        </message>
        <message>
            <source>The identity provider's configuration is not usable; contact IT.</source>
            <translation>Die Konfiguration des Identitätsanbieters ist nicht verwendbar; wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Sign-in did not complete</source>
            <translation>Die Anmeldung wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <source>Sign-in took too long</source>
            <translation>Die Anmeldung hat zu lange gedauert</translation>
        </message>
        <message>
            <source>Sign in again and finish the login in the browser in time.</source>
            <translation>Melden Sie sich erneut an und schließen Sie die Anmeldung rechtzeitig im Browser ab.</translation>
        </message>
        <message>
            <source>Sign in again; close any other sign-in tabs first.</source>
            <translation>Melden Sie sich erneut an; schließen Sie vorher alle anderen Anmelde-Tabs.</translation>
        </message>
        <message>
            <source>Sign-in was declined</source>
            <translation>Die Anmeldung wurde abgelehnt</translation>
        </message>
        <message>
            <source>Sign in again and approve the request, or ask IT for access.</source>
            <translation>Melden Sie sich erneut an und bestätigen Sie die Anfrage, oder bitten Sie die IT um Zugriff.</translation>
        </message>
        <message>
            <source>The sign-in code expired</source>
            <translation>Der Anmeldecode ist abgelaufen</translation>
        </message>
        <message>
            <source>Run the sign-in again and enter the new code sooner.</source>
            <translation>Starten Sie die Anmeldung erneut und geben Sie den neuen Code schneller ein.</translation>
        </message>
        <message>
            <source>Sign-in was refused</source>
            <translation>Die Anmeldung wurde verweigert</translation>
        </message>
        <message>
            <source>Sign in again.</source>
            <translation>Melden Sie sich erneut an.</translation>
        </message>
        <message>
            <source>The sign-in could not be verified</source>
            <translation>Die Anmeldung konnte nicht überprüft werden</translation>
        </message>
        <message>
            <source>Sign in again; if it keeps failing, contact IT.</source>
            <translation>Melden Sie sich erneut an; wenn es weiterhin fehlschlägt, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>This computer's clock is wrong</source>
            <translation>Die Uhr dieses Computers geht falsch</translation>
        </message>
        <message>
            <source>Set this computer's clock: turn on automatic date and time (or correct the date, time and time zone), then try again. You stay signed in meanwhile.</source>
            <translation>Stellen Sie die Uhr dieses Computers: Schalten Sie automatisches Datum und Uhrzeit ein (oder korrigieren Sie Datum, Uhrzeit und Zeitzone) und versuchen Sie es dann erneut. Sie bleiben so lange angemeldet.</translation>
        </message>
        <message>
            <source>This computer's clock is 1 minute off the identity provider's (ahead)</source>
            <translation>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter 1 Minute vor</translation>
        </message>
        <message numerus="yes">
            <source>This computer's clock is %n minutes off the identity provider's (ahead)</source>
            <translation>
                <numerusform>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter %n Minute vor</numerusform>
                <numerusform>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter %n Minuten vor</numerusform>
            </translation>
        </message>
        <message>
            <source>This computer's clock is 1 minute off the identity provider's (behind)</source>
            <translation>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter 1 Minute nach</translation>
        </message>
        <message numerus="yes">
            <source>This computer's clock is %n minutes off the identity provider's (behind)</source>
            <translation>
                <numerusform>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter %n Minute nach</numerusform>
                <numerusform>Die Uhr dieses Computers geht gegenüber dem Identitätsanbieter %n Minuten nach</numerusform>
            </translation>
        </message>
        <message>
            <source>Sign-in needed</source>
            <translation>Anmeldung erforderlich</translation>
        </message>
        <message>
            <source>The keyring could not be used</source>
            <translation>Der Schlüsselbund konnte nicht verwendet werden</translation>
        </message>
        <message>
            <source>Unlock your keyring (log out and in again if needed) and retry.</source>
            <translation>Entsperren Sie Ihren Schlüsselbund (ggf. ab- und wieder anmelden) und versuchen Sie es erneut.</translation>
        </message>
        <message>
            <source>No keyring found</source>
            <translation>Kein Schlüsselbund gefunden</translation>
        </message>
        <message>
            <source>Install and start a Secret Service (e.g. gnome-keyring or KWallet) in your desktop session, then try again.</source>
            <translation>Installieren und starten Sie einen Secret Service (z. B. gnome-keyring oder KWallet) in Ihrer Desktop-Sitzung und versuchen Sie es dann erneut.</translation>
        </message>
    </context>
    <context>
        <name>core.clock</name>
        <message>
            <source>Mon</source>
            <translation>Mo</translation>
        </message>
        <message>
            <source>Tue</source>
            <translation>Di</translation>
        </message>
        <message>
            <source>Wed</source>
            <translation>Mi</translation>
        </message>
        <message>
            <source>Thu</source>
            <translation>Do</translation>
        </message>
        <message>
            <source>Fri</source>
            <translation>Fr</translation>
        </message>
        <message>
            <source>Sat</source>
            <translation>Sa</translation>
        </message>
        <message>
            <source>Sun</source>
            <translation>So</translation>
        </message>
        <message>
            <source>Jan</source>
            <translation>Jan</translation>
        </message>
        <message>
            <source>Feb</source>
            <translation>Feb</translation>
        </message>
        <message>
            <source>Mar</source>
            <translation>Mär</translation>
        </message>
        <message>
            <source>Apr</source>
            <translation>Apr</translation>
        </message>
        <message>
            <source>May</source>
            <translation>Mai</translation>
        </message>
        <message>
            <source>Jun</source>
            <translation>Jun</translation>
        </message>
        <message>
            <source>Jul</source>
            <translation>Jul</translation>
        </message>
        <message>
            <source>Aug</source>
            <translation>Aug</translation>
        </message>
        <message>
            <source>Sep</source>
            <translation>Sep</translation>
        </message>
        <message>
            <source>Oct</source>
            <translation>Okt</translation>
        </message>
        <message>
            <source>Nov</source>
            <translation>Nov</translation>
        </message>
        <message>
            <source>Dec</source>
            <translation>Dez</translation>
        </message>
        <message numerus="yes">
            <source>%n minute</source>
            <translation>
                <numerusform>%n Minute</numerusform>
                <numerusform>%n Minuten</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n minutes</source>
            <translation>
                <numerusform>%n Minute</numerusform>
                <numerusform>%n Minuten</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n hour</source>
            <translation>
                <numerusform>%n Stunde</numerusform>
                <numerusform>%n Stunden</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n hours</source>
            <translation>
                <numerusform>%n Stunde</numerusform>
                <numerusform>%n Stunden</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n day</source>
            <translation>
                <numerusform>%n Tag</numerusform>
                <numerusform>%n Tage</numerusform>
            </translation>
        </message>
        <message numerus="yes">
            <source>%n days</source>
            <translation>
                <numerusform>%n Tag</numerusform>
                <numerusform>%n Tage</numerusform>
            </translation>
        </message>
        <message>
            <source>This computer's clock is {amount} ahead of the controller's — set the date and time</source>
            <translation>Die Uhr dieses Computers geht {amount} vor gegenüber dem Controller — stellen Sie Datum und Uhrzeit ein</translation>
        </message>
        <message>
            <source>This computer's clock is {amount} behind the controller's — set the date and time</source>
            <translation>Die Uhr dieses Computers geht {amount} nach gegenüber dem Controller — stellen Sie Datum und Uhrzeit ein</translation>
        </message>
        <message>
            <source>{weekday} {day} {month} {time}</source>
            <translation>{weekday} {day}. {month} {time}</translation>
        </message>
        <message>
            <source>Signed in, renews automatically</source>
            <translation>Angemeldet, verlängert sich automatisch</translation>
        </message>
        <message>
            <source>Signed in until {when}, renews automatically</source>
            <translation>Angemeldet bis {when}, verlängert sich automatisch</translation>
        </message>
        <message>
            <source>Signed in until {when}, then you need to sign in again</source>
            <translation>Angemeldet bis {when}, danach müssen Sie sich erneut anmelden</translation>
        </message>
        <message>
            <source>Signed in until {when}</source>
            <translation>Angemeldet bis {when}</translation>
        </message>
    </context>
    <context>
        <name>core.controlplane.errors</name>
        <message>
            <source>Check your network connection. Rustronaut keeps retrying.</source>
            <translation>Prüfen Sie Ihre Netzwerkverbindung. Rustronaut versucht es weiter.</translation>
        </message>
        <message>
            <source>Problem talking to the controller</source>
            <translation>Problem bei der Kommunikation mit dem Controller</translation>
        </message>
        <message>
            <source>Controller unreachable</source>
            <translation>Controller nicht erreichbar</translation>
        </message>
        <message>
            <source>The controller's identity could not be confirmed</source>
            <translation>Die Identität des Controllers konnte nicht bestätigt werden</translation>
        </message>
        <message>
            <source>Do not work around this: tell IT. Another network (or a TLS inspector) may be answering in the controller's place.</source>
            <translation>Umgehen Sie dies nicht: Informieren Sie die IT. Möglicherweise antwortet ein anderes Netzwerk (oder ein TLS-Inspektor) anstelle des Controllers.</translation>
        </message>
        <message>
            <source>Sign in to the Wi-Fi network</source>
            <translation>Im WLAN anmelden</translation>
        </message>
        <message>
            <source>Open a browser and sign in to the network; Rustronaut reconnects by itself.</source>
            <translation>Öffnen Sie einen Browser und melden Sie sich im Netzwerk an; Rustronaut verbindet sich dann selbst.</translation>
        </message>
        <message>
            <source>{message}. The sign-in page: {url}</source>
            <translation>{message}. Die Anmeldeseite: {url}</translation>
        </message>
        <message>
            <source>The proxy did not get through</source>
            <translation>Der Proxy kam nicht durch</translation>
        </message>
        <message>
            <source>Could not reach the controller through the proxy {proxy} (set by {source}).</source>
            <translation>Controller über den Proxy {proxy} nicht erreichbar (festgelegt durch {source}).</translation>
        </message>
        <message>
            <source>Check the proxy settings (or that you are on the network the proxy belongs to); ask IT if the proxy refuses the controller.</source>
            <translation>Prüfen Sie die Proxy-Einstellungen (oder ob Sie im Netzwerk des Proxys sind); fragen Sie die IT, wenn der Proxy den Controller ablehnt.</translation>
        </message>
        <message>
            <source>The controller's answer was not usable</source>
            <translation>Die Antwort des Controllers war unbrauchbar</translation>
        </message>
        <message>
            <source>Try again later. If it keeps happening, something on the network may be changing the traffic: collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Versuchen Sie es später erneut. Passiert es wieder, verändert evtl. etwas im Netzwerk den Datenverkehr: Sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The controller refused the request</source>
            <translation>Der Controller hat die Anfrage verweigert</translation>
        </message>
        <message>
            <source>HTTP status {status}</source>
            <translation>HTTP-Status {status}</translation>
        </message>
        <message>
            <source>Sign-in needed</source>
            <translation>Anmeldung nötig</translation>
        </message>
        <message>
            <source>Sign in again.</source>
            <translation>Melden Sie sich erneut an.</translation>
        </message>
        <message>
            <source>The controller refused this device</source>
            <translation>Der Controller hat dieses Gerät abgelehnt</translation>
        </message>
        <message>
            <source>This device may have been removed from your organization: contact IT.</source>
            <translation>Dieses Gerät wurde evtl. aus Ihrer Organisation entfernt: Wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The controller does not know what was asked</source>
            <translation>Der Controller kennt die Anfrage nicht</translation>
        </message>
        <message>
            <source>This device's key is already enrolled</source>
            <translation>Der Schlüssel dieses Geräts ist bereits registriert</translation>
        </message>
        <message>
            <source>Ask IT to remove the old enrollment of this device, then sign in again.</source>
            <translation>Bitten Sie die IT, die alte Registrierung dieses Geräts zu entfernen, und melden Sie sich dann erneut an.</translation>
        </message>
        <message>
            <source>The controller rejected the request</source>
            <translation>Der Controller hat die Anfrage abgelehnt</translation>
        </message>
        <message>
            <source>The controller is busy</source>
            <translation>Der Controller ist ausgelastet</translation>
        </message>
        <message>
            <source>Wait a moment; Rustronaut retries by itself.</source>
            <translation>Warten Sie einen Moment; Rustronaut versucht es selbst erneut.</translation>
        </message>
        <message>
            <source>The controller has a problem</source>
            <translation>Der Controller hat ein Problem</translation>
        </message>
        <message>
            <source>Rustronaut keeps retrying. If it lasts, contact IT.</source>
            <translation>Rustronaut versucht es weiter. Hält es an, wenden Sie sich an die IT.</translation>
        </message>
    </context>
    <context>
        <name>core.controlplane.onboard</name>
        <message>
            <source>Ask IT for your organisation's Rustronaut join link or its address.</source>
            <translation>Fragen Sie die IT nach dem Rustronaut-Beitrittslink Ihrer Organisation oder deren Adresse.</translation>
        </message>
        <message>
            <source>Your organisation's controller was not found</source>
            <translation>Der Controller Ihrer Organisation wurde nicht gefunden</translation>
        </message>
        <message>
            <source>That does not look like a work email or an address</source>
            <translation>Das sieht nicht nach einer geschäftlichen E-Mail-Adresse oder einer Adresse aus</translation>
        </message>
        <message>
            <source>Type your work email (name@company.com) or paste the join link IT sent you.</source>
            <translation>Geben Sie Ihre geschäftliche E-Mail-Adresse (name@company.com) ein oder fügen Sie den Beitrittslink von der IT ein.</translation>
        </message>
        <message>
            <source>Rustronaut refused what was found</source>
            <translation>Rustronaut hat das Gefundene abgelehnt</translation>
        </message>
        <message>
            <source>Tell IT what this says; do not use the address it points to.</source>
            <translation>Teilen Sie der IT diese Meldung mit; verwenden Sie die genannte Adresse nicht.</translation>
        </message>
        <message>
            <source>Rustronaut could not look up your organisation</source>
            <translation>Rustronaut konnte Ihre Organisation nicht finden</translation>
        </message>
        <message>
            <source>Check your network connection, then try again.</source>
            <translation>Prüfen Sie Ihre Netzwerkverbindung und versuchen Sie es erneut.</translation>
        </message>
        <message>
            <source>Named by the join link you opened.</source>
            <translation>Aus dem geöffneten Beitrittslink.</translation>
        </message>
        <message>
            <source>Published by {domain} on its web site.</source>
            <translation>Von {domain} auf der eigenen Website veröffentlicht.</translation>
        </message>
        <message>
            <source>Published in the DNS records of {domain}.</source>
            <translation>In den DNS-Einträgen von {domain} veröffentlicht.</translation>
        </message>
        <message>
            <source>The controller's address {url} is not a web address.</source>
            <translation>Die Controller-Adresse {url} ist keine Webadresse.</translation>
        </message>
        <message>
            <source>{site} answered with something that is not a record.</source>
            <translation>{site} hat etwas geantwortet, das kein Eintrag ist.</translation>
        </message>
        <message>
            <source>The controller's address is empty.</source>
            <translation>Die Controller-Adresse ist leer.</translation>
        </message>
        <message>
            <source>The controller's address {url} has letters outside plain ASCII; it must be published in its xn-- form.</source>
            <translation>Die Controller-Adresse {url} enthält Zeichen außerhalb von ASCII; sie muss in ihrer xn---Form veröffentlicht werden.</translation>
        </message>
        <message>
            <source>The controller's address {url} is not secure (http://); Rustronaut only uses https:// addresses.</source>
            <translation>Die Controller-Adresse {url} ist nicht sicher (http://); Rustronaut verwendet nur https://-Adressen.</translation>
        </message>
        <message>
            <source>The controller's address {url} is not an https:// address.</source>
            <translation>Die Controller-Adresse {url} ist keine https://-Adresse.</translation>
        </message>
        <message>
            <source>The controller's address contains a user name or password.</source>
            <translation>Die Controller-Adresse enthält einen Benutzernamen oder ein Kennwort.</translation>
        </message>
        <message>
            <source>The controller's address {url} names no server.</source>
            <translation>Die Controller-Adresse {url} nennt keinen Server.</translation>
        </message>
        <message>
            <source>The controller's address {url} carries extra parts (? or #).</source>
            <translation>Die Controller-Adresse {url} enthält zusätzliche Teile (? oder #).</translation>
        </message>
        <message>
            <source>This join link is not valid. It should look like rustronaut://join?controller=https://…</source>
            <translation>Dieser Beitrittslink ist ungültig. Er sollte so aussehen: rustronaut://join?controller=https://…</translation>
        </message>
        <message>
            <source>{text} is not a work email or an organisation's address (like name@company.com or company.com).</source>
            <translation>{text} ist keine geschäftliche E-Mail-Adresse und keine Adresse einer Organisation (z. B. name@company.com oder company.com).</translation>
        </message>
        <message>
            <source>http://{host} is not secure; type the address without http:// (Rustronaut looks it up over https://).</source>
            <translation>http://{host} ist nicht sicher; geben Sie die Adresse ohne http:// ein (Rustronaut sucht über https://).</translation>
        </message>
        <message>
            <source>{site} answered with a redirect to {location}; Rustronaut does not follow redirects when looking for a controller.</source>
            <translation>{site} hat mit einer Weiterleitung zu {location} geantwortet; Rustronaut folgt bei der Controller-Suche keinen Weiterleitungen.</translation>
        </message>
        <message>
            <source>{site} answered with a redirect; Rustronaut does not follow redirects when looking for a controller.</source>
            <translation>{site} hat mit einer Weiterleitung geantwortet; Rustronaut folgt bei der Controller-Suche keinen Weiterleitungen.</translation>
        </message>
        <message>
            <source>{site} answered the lookup with an error ({status}).</source>
            <translation>{site} hat die Anfrage mit einem Fehler beantwortet ({status}).</translation>
        </message>
        <message>
            <source>{site} answered with a record over {size} KB; it is refused.</source>
            <translation>{site} hat mit einem Eintrag über {size} KB geantwortet; er wird abgelehnt.</translation>
        </message>
        <message>
            <source>{site} published a controller address that is not text.</source>
            <translation>{site} hat eine Controller-Adresse veröffentlicht, die kein Text ist.</translation>
        </message>
        <message>
            <source>{site} answered with a record Rustronaut does not understand.</source>
            <translation>{site} hat mit einem Eintrag geantwortet, den Rustronaut nicht versteht.</translation>
        </message>
        <message>
            <source>The DNS records of {domain} name more than one controller; ask IT which to use.</source>
            <translation>Die DNS-Einträge von {domain} nennen mehrere Controller; fragen Sie die IT, welcher zu verwenden ist.</translation>
        </message>
        <message>
            <source>The web site of {domain} presented a certificate Rustronaut does not trust; someone on this network may be impersonating it.</source>
            <translation>Die Website von {domain} hat ein Zertifikat vorgelegt, dem Rustronaut nicht vertraut; möglicherweise gibt sich jemand in diesem Netzwerk als diese Website aus.</translation>
        </message>
        <message>
            <source>Rustronaut could not reach {domain} or its DNS records.</source>
            <translation>Rustronaut konnte weder {domain} noch deren DNS-Einträge erreichen.</translation>
        </message>
        <message>
            <source>Rustronaut could not reach {domain}, and its DNS names no controller.</source>
            <translation>Rustronaut konnte {domain} nicht erreichen, und deren DNS nennt keinen Controller.</translation>
        </message>
        <message>
            <source>{domain} does not publish a Rustronaut controller.</source>
            <translation>{domain} veröffentlicht keinen Rustronaut-Controller.</translation>
        </message>
        <message>
            <source>{domain} names two different controllers: {web} on its web site and {dns} in its DNS records.</source>
            <translation>{domain} nennt zwei verschiedene Controller: {web} auf der Website und {dns} in den DNS-Einträgen.</translation>
        </message>
    </context>
    <context>
        <name>core.controlplane.portal</name>
        <message>
            <source>You seem to be behind a captive portal (hotel/airport Wi-Fi login page): open a browser and sign in to the network, then Rustronaut reconnects</source>
            <translation>Sie sind offenbar hinter einem Anmeldeportal (WLAN-Login in Hotel/Flughafen): Öffnen Sie einen Browser und melden Sie sich im Netzwerk an, dann verbindet sich Rustronaut erneut</translation>
        </message>
    </context>
    <context>
        <name>core.dns.errors</name>
        <message>
            <source>A company name could not be resolved</source>
            <translation>Ein Firmenname konnte nicht aufgelöst werden</translation>
        </message>
        <message>
            <source>Check that you are connected. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Prüfen Sie, ob Sie verbunden sind. Passiert es wieder, sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Not a valid host name</source>
            <translation>Kein gültiger Hostname</translation>
        </message>
        <message>
            <source>Check the address you typed.</source>
            <translation>Prüfen Sie die eingegebene Adresse.</translation>
        </message>
        <message>
            <source>No such company name</source>
            <translation>Firmenname existiert nicht</translation>
        </message>
        <message>
            <source>Check the address you typed. If it should exist, contact IT.</source>
            <translation>Prüfen Sie die eingegebene Adresse. Sollte sie existieren, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The company's DNS did not answer</source>
            <translation>Das Firmen-DNS hat nicht geantwortet</translation>
        </message>
        <message>
            <source>The company's DNS gave an unusable answer</source>
            <translation>Das Firmen-DNS gab eine unbrauchbare Antwort</translation>
        </message>
        <message>
            <source>A company name points somewhere it must not</source>
            <translation>Ein Firmenname zeigt auf ein unzulässiges Ziel</translation>
        </message>
        <message>
            <source>Contact IT: the company's DNS answer for this name is refused.</source>
            <translation>Wenden Sie sich an die IT: Die Antwort des Firmen-DNS für diesen Namen wird abgelehnt.</translation>
        </message>
    </context>
    <context>
        <name>core.engine.adapters</name>
        <message>
            <source>Could not be checked ({reason})</source>
            <translation>Konnte nicht geprüft werden ({reason})</translation>
        </message>
        <message>
            <source>Could not be checked</source>
            <translation>Konnte nicht geprüft werden</translation>
        </message>
        <message>
            <source>yes</source>
            <translation>ja</translation>
        </message>
        <message>
            <source>no</source>
            <translation>nein</translation>
        </message>
        <message>
            <source>none</source>
            <translation>keine</translation>
        </message>
    </context>
    <context>
        <name>core.engine.diag</name>
        <message>
            <source>reading {section}</source>
            <translation>{section} lesen</translation>
        </message>
        <message>
            <source>writing {section}</source>
            <translation>{section} schreiben</translation>
        </message>
        <message>
            <source>reading the settings</source>
            <translation>Einstellungen lesen</translation>
        </message>
    </context>
    <context>
        <name>core.engine.engine</name>
        <message>
            <source>Reconnecting after sleep</source>
            <translation>Verbindung wird nach Ruhezustand wiederhergestellt</translation>
        </message>
        <message>
            <source>Managed configuration rejected: {reason}</source>
            <translation>Verwaltete Konfiguration abgelehnt: {reason}</translation>
        </message>
        <message>
            <source>Settings changed by your organization</source>
            <translation>Einstellungen von Ihrer Organisation geändert</translation>
        </message>
        <message>
            <source>Settings changed</source>
            <translation>Einstellungen geändert</translation>
        </message>
        <message>
            <source>signing in</source>
            <translation>Anmelden</translation>
        </message>
        <message>
            <source>Signed in as {user}</source>
            <translation>Angemeldet als {user}</translation>
        </message>
        <message>
            <source>Open {url} and enter the code {code}</source>
            <translation>Öffnen Sie {url} und geben Sie den Code {code} ein</translation>
        </message>
        <message>
            <source>signing out</source>
            <translation>Abmelden</translation>
        </message>
        <message>
            <source>Signed out</source>
            <translation>Abgemeldet</translation>
        </message>
        <message>
            <source>Your organization does not allow {action} while connected.</source>
            <translation>Ihre Organisation erlaubt das {action} nicht, solange Sie verbunden sind.</translation>
        </message>
        <message>
            <source>Always-on is on: a reason is required for {action}.</source>
            <translation>Always-on ist an: Für das {action} ist ein Grund erforderlich.</translation>
        </message>
        <message>
            <source>Always-on is on: give IT a reason of at least {count} characters.</source>
            <translation>Always-on ist an: Geben Sie der IT einen Grund mit mindestens {count} Zeichen an.</translation>
        </message>
        <message>
            <source>disconnecting</source>
            <translation>Trennen</translation>
        </message>
    </context>
    <context>
        <name>core.engine.errors</name>
        <message>
            <source>Something went wrong</source>
            <translation>Etwas ist schiefgelaufen</translation>
        </message>
        <message>
            <source>Sign-in needed</source>
            <translation>Anmeldung erforderlich</translation>
        </message>
        <message>
            <source>Choose Sign in and complete the sign-in in your browser.</source>
            <translation>Wählen Sie „Anmelden“ und schließen Sie die Anmeldung im Browser ab.</translation>
        </message>
        <message>
            <source>No gateway for this device</source>
            <translation>Kein Gateway für dieses Gerät</translation>
        </message>
        <message>
            <source>Ask IT: the controller has no WireGuard gateway configured for you yet.</source>
            <translation>Fragen Sie die IT: Der Controller hat noch kein WireGuard-Gateway für Sie konfiguriert.</translation>
        </message>
        <message>
            <source>Always-on is required by your organization</source>
            <translation>Always-on (immer verbunden) wird von Ihrer Organisation verlangt</translation>
        </message>
        <message>
            <source>Use the break-glass disconnect and give a reason; IT is told.</source>
            <translation>Trennen Sie per Notfallzugang und geben Sie einen Grund an; die IT wird informiert.</translation>
        </message>
        <message>
            <source>Give a reason</source>
            <translation>Grund angeben</translation>
        </message>
        <message>
            <source>Your organization requires a reason of at least {count} characters.</source>
            <translation>Ihre Organisation verlangt einen Grund mit mindestens {count} Zeichen.</translation>
        </message>
        <message>
            <source>Say why you need to turn the protection off, in at least {count} characters; IT is told.</source>
            <translation>Geben Sie in mindestens {count} Zeichen an, warum Sie den Schutz ausschalten müssen; die IT wird informiert.</translation>
        </message>
        <message>
            <source>The Rustronaut helper stopped</source>
            <translation>Der Rustronaut-Hilfsdienst wurde beendet</translation>
        </message>
        <message>
            <source>Restart the rustronaut-helper service (or restart the computer); if it keeps stopping, contact IT.</source>
            <translation>Starten Sie den Dienst rustronaut-helper neu (oder den Computer); wenn er weiterhin stoppt, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The connection to the helper was lost; the tunnel is down.</source>
            <translation>Die Verbindung zum Hilfsdienst ist abgebrochen; der Tunnel ist getrennt.</translation>
        </message>
        <message>
            <source>Check the date and time, then your network; a corporate TLS inspector may need IT's certificate installed.</source>
            <translation>Prüfen Sie Datum und Uhrzeit, dann Ihr Netzwerk; bei TLS-Prüfung im Firmennetz muss ggf. das Zertifikat der IT installiert werden.</translation>
        </message>
        <message>
            <source>The connection to the controller was cut.</source>
            <translation>Die Verbindung zum Controller wurde unterbrochen.</translation>
        </message>
        <message>
            <source>The controller did not answer in time.</source>
            <translation>Der Controller hat nicht rechtzeitig geantwortet.</translation>
        </message>
        <message>
            <source>The controller did not answer (connection refused).</source>
            <translation>Der Controller hat nicht geantwortet (Verbindung abgelehnt).</translation>
        </message>
        <message>
            <source>The controller's name could not be found (DNS).</source>
            <translation>Der Name des Controllers wurde nicht gefunden (DNS).</translation>
        </message>
        <message>
            <source>The secure connection to the controller failed.</source>
            <translation>Die sichere Verbindung zum Controller ist fehlgeschlagen.</translation>
        </message>
        <message>
            <source>The controller closed the connection unexpectedly.</source>
            <translation>Der Controller hat die Verbindung unerwartet geschlossen.</translation>
        </message>
        <message>
            <source>The controller could not be reached: {reason}.</source>
            <translation>Der Controller war nicht erreichbar: {reason}.</translation>
        </message>
        <message>
            <source>Controller unreachable</source>
            <translation>Controller nicht erreichbar</translation>
        </message>
        <message>
            <source>Could not reach the controller while {during}.</source>
            <translation>Der Controller war beim {during} nicht erreichbar.</translation>
        </message>
        <message>
            <source>The connection to the controller could not be verified: {reason}.</source>
            <translation>Die Verbindung zum Controller konnte nicht überprüft werden: {reason}.</translation>
        </message>
        <message>
            <source>The connection to the controller could not be verified.</source>
            <translation>Die Verbindung zum Controller konnte nicht überprüft werden.</translation>
        </message>
        <message>
            <source>Secure connection failed</source>
            <translation>Sichere Verbindung fehlgeschlagen</translation>
        </message>
        <message>
            <source>a system call failed</source>
            <translation>ein Systemaufruf ist fehlgeschlagen</translation>
        </message>
        <message>
            <source>{what}: {file}.</source>
            <translation>{what}: {file}.</translation>
        </message>
        <message>
            <source>Problem while {during}</source>
            <translation>Problem beim {during}</translation>
        </message>
        <message>
            <source>Something unexpected went wrong: {message}</source>
            <translation>Etwas Unerwartetes ist schiefgelaufen: {message}</translation>
        </message>
        <message>
            <source>Something unexpected went wrong.</source>
            <translation>Etwas Unerwartetes ist schiefgelaufen.</translation>
        </message>
    </context>
    <context>
        <name>core.engine.gateways</name>
        <message>
            <source>The policy for this device names no gateway to connect to.</source>
            <translation>Die Richtlinie für dieses Gerät nennt kein Gateway zum Verbinden.</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.agent</name>
        <message>
            <source>starting</source>
            <translation>startet</translation>
        </message>
        <message>
            <source>Setting '{key}' changed</source>
            <translation>Einstellung '{key}' geändert</translation>
        </message>
        <message>
            <source>The Rustronaut agent could not start: {reason}.</source>
            <translation>Der Rustronaut-Agent konnte nicht starten: {reason}.</translation>
        </message>
        <message>
            <source>Run 'rustronaut agent' in a terminal to see why.</source>
            <translation>Führen Sie 'rustronaut agent' in einem Terminal aus, um den Grund zu sehen.</translation>
        </message>
        <message>
            <source>The Rustronaut agent did not start within {seconds} s ({reason}).</source>
            <translation>Der Rustronaut-Agent ist nicht innerhalb von {seconds} s gestartet ({reason}).</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.client</name>
        <message>
            <source>the engine did not answer</source>
            <translation>die Engine hat nicht geantwortet</translation>
        </message>
        <message>
            <source>the connection to the engine is closed</source>
            <translation>die Verbindung zur Engine ist geschlossen</translation>
        </message>
        <message>
            <source>the engine went away</source>
            <translation>die Engine ist nicht mehr erreichbar</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.errors</name>
        <message>
            <source>Rustronaut could not do that</source>
            <translation>Rustronaut konnte das nicht ausführen</translation>
        </message>
        <message>
            <source>Try again. If it keeps happening, collect diagnostics and contact IT.</source>
            <translation>Versuchen Sie es erneut. Passiert es wieder, sammeln Sie Diagnosedaten und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Rustronaut is not running</source>
            <translation>Rustronaut läuft nicht</translation>
        </message>
        <message>
            <source>Start the Rustronaut app, or run: rustronaut up</source>
            <translation>Starten Sie die Rustronaut-App oder führen Sie aus: rustronaut up</translation>
        </message>
        <message>
            <source>Rustronaut is already running</source>
            <translation>Rustronaut läuft bereits</translation>
        </message>
        <message>
            <source>Use the running Rustronaut (the tray or 'rustronaut status'); only one may run.</source>
            <translation>Verwenden Sie das laufende Rustronaut (Tray oder 'rustronaut status'); nur eines darf laufen.</translation>
        </message>
        <message>
            <source>Malformed request</source>
            <translation>Fehlerhafte Anfrage</translation>
        </message>
        <message>
            <source>Use a Rustronaut client of the same version as the agent.</source>
            <translation>Verwenden Sie einen Rustronaut-Client derselben Version wie der Agent.</translation>
        </message>
        <message>
            <source>Unsupported protocol version</source>
            <translation>Nicht unterstützte Protokollversion</translation>
        </message>
        <message>
            <source>Update Rustronaut so the app, the CLI and the agent are the same version.</source>
            <translation>Aktualisieren Sie Rustronaut, damit App, CLI und Agent dieselbe Version haben.</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.lock</name>
        <message>
            <source>Rustronaut already runs for this user (process {pid}).</source>
            <translation>Rustronaut läuft bereits für diesen Benutzer (Prozess {pid}).</translation>
        </message>
        <message>
            <source>Rustronaut already runs for this user (another process).</source>
            <translation>Rustronaut läuft bereits für diesen Benutzer (anderer Prozess).</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.server</name>
        <message>
            <source>Too many requests</source>
            <translation>Zu viele Anfragen</translation>
        </message>
        <message>
            <source>more than {count} requests in progress on one connection</source>
            <translation>mehr als {count} laufende Anfragen auf einer Verbindung</translation>
        </message>
        <message>
            <source>Wait for the answers before sending more.</source>
            <translation>Warten Sie auf die Antworten, bevor Sie weitere senden.</translation>
        </message>
        <message>
            <source>working</source>
            <translation>in Arbeit</translation>
        </message>
        <message>
            <source>connecting</source>
            <translation>verbinden</translation>
        </message>
        <message>
            <source>disconnecting</source>
            <translation>trennen</translation>
        </message>
        <message>
            <source>signing in</source>
            <translation>anmelden</translation>
        </message>
        <message>
            <source>signing out</source>
            <translation>abmelden</translation>
        </message>
        <message>
            <source>checking posture</source>
            <translation>Gerätezustand prüfen</translation>
        </message>
        <message>
            <source>collecting diagnostics</source>
            <translation>Diagnosedaten sammeln</translation>
        </message>
        <message>
            <source>changing a setting</source>
            <translation>Einstellung ändern</translation>
        </message>
    </context>
    <context>
        <name>core.engine.localapi.transport</name>
        <message>
            <source>Unsafe runtime directory</source>
            <translation>Unsicheres Laufzeitverzeichnis</translation>
        </message>
        <message>
            <source>Remove the directory named here (it is not yours or is open to others) or set XDG_RUNTIME_DIR, then try again.</source>
            <translation>Entfernen Sie das hier genannte Verzeichnis (es gehört Ihnen nicht oder ist für andere offen) oder setzen Sie XDG_RUNTIME_DIR und versuchen Sie es dann erneut.</translation>
        </message>
    </context>
    <context>
        <name>core.engine.reach</name>
        <message>
            <source>reaching the controller</source>
            <translation>Controller erreichen</translation>
        </message>
    </context>
    <context>
        <name>core.engine.reactions</name>
        <message>
            <source>This computer's clock could not be compared with the controller's</source>
            <translation>Die Uhr dieses Computers konnte nicht mit der des Controllers verglichen werden</translation>
        </message>
        <message>
            <source>{clock}. By this computer's clock the policy looks not yet valid.</source>
            <translation>{clock}. Laut Uhr dieses Computers ist die Richtlinie noch nicht gültig.</translation>
        </message>
        <message>
            <source>{clock}. By this computer's clock the policy looks expired.</source>
            <translation>{clock}. Laut Uhr dieses Computers ist die Richtlinie abgelaufen.</translation>
        </message>
        <message>
            <source>This computer's clock is wrong</source>
            <translation>Die Uhr dieses Computers geht falsch</translation>
        </message>
        <message>
            <source>Set the date and time (automatic time is best), then connect again.</source>
            <translation>Stellen Sie Datum und Uhrzeit ein (am besten automatisch) und verbinden Sie dann erneut.</translation>
        </message>
        <message>
            <source>Sign-in needed: {detail}</source>
            <translation>Anmeldung nötig: {detail}</translation>
        </message>
        <message>
            <source>You are not signed in.</source>
            <translation>Sie sind nicht angemeldet.</translation>
        </message>
        <message>
            <source>connecting</source>
            <translation>Verbindungsaufbau</translation>
        </message>
        <message>
            <source>This device is now enrolled</source>
            <translation>Dieses Gerät ist jetzt registriert</translation>
        </message>
        <message>
            <source>Connected</source>
            <translation>Verbunden</translation>
        </message>
        <message>
            <source>Device posture changed</source>
            <translation>Gerätezustand hat sich geändert</translation>
        </message>
        <message>
            <source>reporting the device's posture</source>
            <translation>Gerätezustand melden</translation>
        </message>
        <message>
            <source>reaching the controller</source>
            <translation>Controller erreichen</translation>
        </message>
        <message>
            <source>following the controller's events</source>
            <translation>Ereignisse des Controllers verfolgen</translation>
        </message>
        <message>
            <source>this device was revoked by your organization</source>
            <translation>Ihre Organisation hat dieses Gerät gesperrt</translation>
        </message>
        <message>
            <source>Device revoked</source>
            <translation>Gerät gesperrt</translation>
        </message>
        <message>
            <source>Your organization revoked this device's access.</source>
            <translation>Ihre Organisation hat den Zugriff dieses Geräts widerrufen.</translation>
        </message>
        <message>
            <source>Contact IT; once they allow it, sign in again to re-enroll.</source>
            <translation>Wenden Sie sich an die IT; sobald sie es erlaubt, melden Sie sich erneut an, um das Gerät neu zu registrieren.</translation>
        </message>
        <message>
            <source>Access withdrawn: {reason}</source>
            <translation>Zugriff entzogen: {reason}</translation>
        </message>
        <message>
            <source>updating the policy</source>
            <translation>Richtlinie aktualisieren</translation>
        </message>
        <message>
            <source>A policy update was refused</source>
            <translation>Eine Richtlinienaktualisierung wurde abgelehnt</translation>
        </message>
        <message>
            <source>Could not update the policy</source>
            <translation>Richtlinie konnte nicht aktualisiert werden</translation>
        </message>
        <message>
            <source>Network changed: reconnecting</source>
            <translation>Netzwerk geändert: Verbindung wird wiederhergestellt</translation>
        </message>
        <message>
            <source>the policy expired and no newer one could be fetched</source>
            <translation>die Richtlinie ist abgelaufen und keine neuere konnte abgerufen werden</translation>
        </message>
        <message>
            <source>The Rustronaut helper is back: reconnecting</source>
            <translation>Der Rustronaut-Hilfsdienst ist zurück: Verbindung wird wiederhergestellt</translation>
        </message>
        <message>
            <source>The tunnel was lost: re-applying it</source>
            <translation>Der Tunnel ging verloren: wird neu eingerichtet</translation>
        </message>
        <message>
            <source>re-applying the tunnel</source>
            <translation>Tunnel neu einrichten</translation>
        </message>
        <message>
            <source>The gateway stopped answering ({seconds} s without a reply): reconnecting</source>
            <translation>Das Gateway antwortet nicht mehr ({seconds} s ohne Antwort): Verbindung wird wiederhergestellt</translation>
        </message>
        <message>
            <source>This network routes part of the company's networks elsewhere ({routes}): overridden, company traffic still goes only through the tunnel</source>
            <translation>Dieses Netzwerk leitet Teile der Firmennetze anders ({routes}): übersteuert, Firmenverkehr läuft weiterhin nur durch den Tunnel</translation>
        </message>
        <message>
            <source>checking the tunnel</source>
            <translation>Tunnel prüfen</translation>
        </message>
        <message>
            <source>Gateway {old} is not answering: switching to {new}</source>
            <translation>Gateway {old} antwortet nicht: Wechsel zu {new}</translation>
        </message>
        <message>
            <source>switching to gateway {gateway}</source>
            <translation>Wechsel zu Gateway {gateway}</translation>
        </message>
        <message numerus="yes">
            <source>Your sign-in ends in %n minutes. Sign in again to extend it.</source>
            <translation>
                <numerusform>Ihre Anmeldung endet in %n Minute. Melden Sie sich erneut an, um sie zu verlängern.</numerusform>
                <numerusform>Ihre Anmeldung endet in %n Minuten. Melden Sie sich erneut an, um sie zu verlängern.</numerusform>
            </translation>
        </message>
        <message>
            <source>Not connected</source>
            <translation>Nicht verbunden</translation>
        </message>
    </context>
    <context>
        <name>core.engine.state</name>
        <message>
            <source>✓ Pass</source>
            <translation>✓ Bestanden</translation>
        </message>
        <message>
            <source>✕ Fail</source>
            <translation>✕ Nicht bestanden</translation>
        </message>
        <message>
            <source>? Unknown</source>
            <translation>? Unbekannt</translation>
        </message>
        <message>
            <source>No posture checks yet</source>
            <translation>Noch keine Gerätezustandsprüfungen</translation>
        </message>
        <message>
            <source>Your policy requires no device checks</source>
            <translation>Ihre Richtlinie verlangt keine Geräteprüfungen</translation>
        </message>
        <message>
            <source>1 check needs attention · {passed} of {total} pass</source>
            <translation>1 Prüfung braucht Aufmerksamkeit · {passed} von {total} bestanden</translation>
        </message>
        <message numerus="yes">
            <source>%n checks need attention · {passed} of {total} pass</source>
            <translation>
                <numerusform>%n Prüfung braucht Aufmerksamkeit · {passed} von {total} bestanden</numerusform>
                <numerusform>%n Prüfungen brauchen Aufmerksamkeit · {passed} von {total} bestanden</numerusform>
            </translation>
        </message>
        <message>
            <source>1 check could not be made · {passed} of {total} pass</source>
            <translation>1 Prüfung war nicht möglich · {passed} von {total} bestanden</translation>
        </message>
        <message numerus="yes">
            <source>%n checks could not be made · {passed} of {total} pass</source>
            <translation>
                <numerusform>%n Prüfung war nicht möglich · {passed} von {total} bestanden</numerusform>
                <numerusform>%n Prüfungen waren nicht möglich · {passed} von {total} bestanden</numerusform>
            </translation>
        </message>
        <message>
            <source>All good · {passed} of {total} checks pass</source>
            <translation>Alles in Ordnung · {passed} von {total} Prüfungen bestanden</translation>
        </message>
    </context>
    <context>
        <name>core.engine.transport</name>
        <message>
            <source>This network lets neither WireGuard's UDP nor any relay through</source>
            <translation>Dieses Netzwerk lässt weder das UDP von WireGuard noch ein Relay durch</translation>
        </message>
        <message>
            <source>Relay {old} stopped answering: now through relay {relay}</source>
            <translation>Relay {old} antwortet nicht mehr: jetzt über Relay {relay}</translation>
        </message>
        <message>
            <source>Connected through relay {relay}: UDP stopped getting through on this network</source>
            <translation>Verbunden über Relay {relay}: UDP kommt in diesem Netzwerk nicht mehr durch</translation>
        </message>
        <message>
            <source>Connected through relay {relay}: this network blocks UDP</source>
            <translation>Verbunden über Relay {relay}: Dieses Netzwerk blockiert UDP</translation>
        </message>
        <message>
            <source>Back on direct UDP</source>
            <translation>Wieder direkt über UDP</translation>
        </message>
    </context>
    <context>
        <name>core.engine.wiring</name>
        <message>
            <source>Rustronaut is not configured</source>
            <translation>Rustronaut ist nicht konfiguriert</translation>
        </message>
        <message>
            <source>Rustronaut is not configured.</source>
            <translation>Rustronaut ist nicht konfiguriert.</translation>
        </message>
        <message>
            <source>Ask IT to set the controller URL, or run: rustronaut config set controller_url URL</source>
            <translation>Bitten Sie die IT, die Controller-URL festzulegen, oder führen Sie aus: rustronaut config set controller_url URL</translation>
        </message>
        <message>
            <source>No controller URL is set.</source>
            <translation>Es ist keine Controller-URL festgelegt.</translation>
        </message>
    </context>
    <context>
        <name>core.errors</name>
        <message>
            <source>Try again. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Versuchen Sie es erneut. Wenn es wieder passiert, sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>Something went wrong</source>
            <translation>Etwas ist schiefgelaufen</translation>
        </message>
    </context>
    <context>
        <name>core.policy.errors</name>
        <message>
            <source>The access policy could not be used</source>
            <translation>Die Zugriffsrichtlinie konnte nicht verwendet werden</translation>
        </message>
        <message>
            <source>The policy from the controller was refused</source>
            <translation>Die Richtlinie vom Controller wurde abgelehnt</translation>
        </message>
        <message>
            <source>Nothing to do on this device: access stays as it was. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Auf diesem Gerät ist nichts zu tun: Der Zugriff bleibt unverändert. Wenn es wieder passiert, sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The policy is for another device</source>
            <translation>Die Richtlinie gilt für ein anderes Gerät</translation>
        </message>
        <message>
            <source>The access policy has expired</source>
            <translation>Die Zugriffsrichtlinie ist abgelaufen</translation>
        </message>
        <message>
            <source>Check that this computer's date and time are correct; Rustronaut fetches a new policy when it reaches the controller.</source>
            <translation>Prüfen Sie, ob Datum und Uhrzeit dieses Computers stimmen; Rustronaut holt eine neue Richtlinie, sobald der Controller erreichbar ist.</translation>
        </message>
        <message>
            <source>This computer's clock is off</source>
            <translation>Die Uhr dieses Computers geht falsch</translation>
        </message>
        <message>
            <source>Check that this computer's date, time and time zone are correct.</source>
            <translation>Prüfen Sie, ob Datum, Uhrzeit und Zeitzone dieses Computers stimmen.</translation>
        </message>
        <message>
            <source>The saved policy could not be read or written</source>
            <translation>Die gespeicherte Richtlinie konnte nicht gelesen oder geschrieben werden</translation>
        </message>
        <message>
            <source>Check that your disk is not full. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Prüfen Sie, ob Ihr Datenträger voll ist. Wenn es wieder passiert, sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>The controller's policy keys are not trusted</source>
            <translation>Den Richtlinienschlüsseln des Controllers wird nicht vertraut</translation>
        </message>
        <message>
            <source>Access stays as it was. Contact IT: the controller's signing keys are not endorsed by your organisation's policy trust anchors (setting policy_trust_anchors).</source>
            <translation>Der Zugriff bleibt unverändert. Wenden Sie sich an die IT: Die Signaturschlüssel des Controllers sind nicht durch die Vertrauensanker Ihrer Organisation bestätigt (Einstellung policy_trust_anchors).</translation>
        </message>
        <message>
            <source>The controller's policy root key changed</source>
            <translation>Der Richtlinien-Stammschlüssel des Controllers hat sich geändert</translation>
        </message>
        <message>
            <source>Access stays as it was. If your organisation really replaced its controller's root key, have IT set policy_trust_anchors (or remove the pinned key file named in the details); otherwise someone may be impersonating the controller.</source>
            <translation>Der Zugriff bleibt unverändert. Hat Ihre Organisation den Stammschlüssel ihres Controllers wirklich ersetzt, lassen Sie die IT policy_trust_anchors setzen (oder die in den Details genannte fixierte Schlüsseldatei entfernen); andernfalls gibt sich womöglich jemand als Controller aus.</translation>
        </message>
        <message>
            <source>The saved policy version could not be verified</source>
            <translation>Die gespeicherte Richtlinienversion konnte nicht überprüft werden</translation>
        </message>
        <message>
            <source>Access through new policies stays blocked until this is fixed. Contact IT with the details: they can reset the policy version record after checking the device.</source>
            <translation>Zugriff über neue Richtlinien bleibt gesperrt, bis das behoben ist. Wenden Sie sich mit den Details an die IT: Sie kann den Richtlinienversions-Eintrag nach Prüfung des Geräts zurücksetzen.</translation>
        </message>
    </context>
    <context>
        <name>core.policy.explain</name>
        <message>
            <source>Turn on full-disk encryption (BitLocker, FileVault or LUKS).</source>
            <translation>Aktivieren Sie die Festplattenverschlüsselung (BitLocker, FileVault oder LUKS).</translation>
        </message>
        <message>
            <source>Turn on the firewall in your system's security settings.</source>
            <translation>Aktivieren Sie die Firewall in den Sicherheitseinstellungen Ihres Systems.</translation>
        </message>
        <message>
            <source>Set a password screen lock in your system settings.</source>
            <translation>Richten Sie in den Systemeinstellungen eine Bildschirmsperre mit Kennwort ein.</translation>
        </message>
        <message>
            <source>Shorten the idle time before the screen locks.</source>
            <translation>Verkürzen Sie die Leerlaufzeit bis zur Bildschirmsperre.</translation>
        </message>
        <message>
            <source>Turn on automatic security updates.</source>
            <translation>Aktivieren Sie automatische Sicherheitsupdates.</translation>
        </message>
        <message>
            <source>Ask IT to turn on Secure Boot in the firmware.</source>
            <translation>Bitten Sie die IT, Secure Boot in der Firmware zu aktivieren.</translation>
        </message>
        <message>
            <source>Start (or install) the company antivirus/EDR agent.</source>
            <translation>Starten (oder installieren) Sie den Antivirus-/EDR-Agent des Unternehmens.</translation>
        </message>
        <message>
            <source>Install the company antivirus/EDR agent.</source>
            <translation>Installieren Sie den Antivirus-/EDR-Agent des Unternehmens.</translation>
        </message>
        <message>
            <source>Enrol this device in the company's device management.</source>
            <translation>Registrieren Sie dieses Gerät in der Geräteverwaltung des Unternehmens.</translation>
        </message>
        <message>
            <source>Ask IT to join this device to the company domain.</source>
            <translation>Bitten Sie die IT, dieses Gerät in die Firmendomäne aufzunehmen.</translation>
        </message>
        <message>
            <source>Update your operating system.</source>
            <translation>Aktualisieren Sie Ihr Betriebssystem.</translation>
        </message>
        <message>
            <source>Install the latest operating-system updates.</source>
            <translation>Installieren Sie die neuesten Betriebssystem-Updates.</translation>
        </message>
        <message>
            <source>Install the latest kernel updates and restart.</source>
            <translation>Installieren Sie die neuesten Kernel-Updates und starten Sie neu.</translation>
        </message>
        <message>
            <source>Update Rustronaut to the latest version.</source>
            <translation>Aktualisieren Sie Rustronaut auf die neueste Version.</translation>
        </message>
        <message>
            <source>Ask IT for access: your account is not in a group this needs.</source>
            <translation>Bitten Sie die IT um Zugriff: Ihr Konto ist nicht in einer dafür nötigen Gruppe.</translation>
        </message>
        <message>
            <source>Sign in with your company account.</source>
            <translation>Melden Sie sich mit Ihrem Firmenkonto an.</translation>
        </message>
        <message>
            <source>This resource is available only during set hours.</source>
            <translation>Diese Ressource ist nur zu festgelegten Zeiten verfügbar.</translation>
        </message>
        <message>
            <source>This resource is available only on set days.</source>
            <translation>Diese Ressource ist nur an festgelegten Tagen verfügbar.</translation>
        </message>
        <message>
            <source>Your device's risk score is too high. Fix the posture issues shown; behavioural risk falls by itself over time.</source>
            <translation>Der Risikowert Ihres Geräts ist zu hoch. Beheben Sie die angezeigten Probleme beim Gerätezustand; das Verhaltensrisiko sinkt mit der Zeit von selbst.</translation>
        </message>
        <message>
            <source>Contact IT about '{fact}'.</source>
            <translation>Wenden Sie sich wegen '{fact}' an die IT.</translation>
        </message>
        <message>
            <source>If it is already so, re-run the device check (posture could not be read).</source>
            <translation>Falls das bereits so ist, führen Sie die Geräteprüfung erneut aus (der Gerätezustand konnte nicht gelesen werden).</translation>
        </message>
        <message>
            <source>{value}</source>
            <translation>{value}</translation>
        </message>
        <message>
            <source>not {value}</source>
            <translation>nicht {value}</translation>
        </message>
        <message>
            <source>none of {value}</source>
            <translation>keins von {value}</translation>
        </message>
        <message>
            <source>above {value}</source>
            <translation>über {value}</translation>
        </message>
        <message>
            <source>at most {value}</source>
            <translation>höchstens {value}</translation>
        </message>
        <message>
            <source>at least {value}</source>
            <translation>mindestens {value}</translation>
        </message>
        <message>
            <source>below {value}</source>
            <translation>unter {value}</translation>
        </message>
        <message>
            <source>version {value}</source>
            <translation>Version {value}</translation>
        </message>
        <message>
            <source>not version {value}</source>
            <translation>nicht Version {value}</translation>
        </message>
        <message>
            <source>newer than {value}</source>
            <translation>neuer als {value}</translation>
        </message>
        <message>
            <source>{value} or older</source>
            <translation>{value} oder älter</translation>
        </message>
        <message>
            <source>{value} or newer</source>
            <translation>{value} oder neuer</translation>
        </message>
        <message>
            <source>older than {value}</source>
            <translation>älter als {value}</translation>
        </message>
        <message>
            <source>matching {value}</source>
            <translation>passend zu {value}</translation>
        </message>
        <message>
            <source>not matching {value}</source>
            <translation>nicht passend zu {value}</translation>
        </message>
        <message>
            <source>matching the pattern {value}</source>
            <translation>passend zum Muster {value}</translation>
        </message>
        <message>
            <source>not matching the pattern {value}</source>
            <translation>nicht passend zum Muster {value}</translation>
        </message>
        <message>
            <source>in {value}</source>
            <translation>in {value}</translation>
        </message>
        <message>
            <source>outside {value}</source>
            <translation>außerhalb von {value}</translation>
        </message>
        <message>
            <source>checked</source>
            <translation>geprüft</translation>
        </message>
        <message>
            <source>not reported</source>
            <translation>nicht gemeldet</translation>
        </message>
        <message>
            <source>set</source>
            <translation>gesetzt</translation>
        </message>
        <message>
            <source>empty</source>
            <translation>leer</translation>
        </message>
        <message>
            <source>at {time}</source>
            <translation>um {time}</translation>
        </message>
        <message>
            <source>outside {time}</source>
            <translation>außerhalb von {time}</translation>
        </message>
        <message>
            <source>after {time}</source>
            <translation>nach {time}</translation>
        </message>
        <message>
            <source>until {time}</source>
            <translation>bis {time}</translation>
        </message>
        <message>
            <source>from {time}</source>
            <translation>ab {time}</translation>
        </message>
        <message>
            <source>before {time}</source>
            <translation>vor {time}</translation>
        </message>
        <message>
            <source>Monday</source>
            <translation>Montag</translation>
        </message>
        <message>
            <source>Tuesday</source>
            <translation>Dienstag</translation>
        </message>
        <message>
            <source>Wednesday</source>
            <translation>Mittwoch</translation>
        </message>
        <message>
            <source>Thursday</source>
            <translation>Donnerstag</translation>
        </message>
        <message>
            <source>Friday</source>
            <translation>Freitag</translation>
        </message>
        <message>
            <source>Saturday</source>
            <translation>Samstag</translation>
        </message>
        <message>
            <source>Sunday</source>
            <translation>Sonntag</translation>
        </message>
        <message>
            <source>yes</source>
            <translation>ja</translation>
        </message>
        <message>
            <source>no</source>
            <translation>nein</translation>
        </message>
        <message>
            <source>not known</source>
            <translation>unbekannt</translation>
        </message>
        <message>
            <source>others</source>
            <translation>andere</translation>
        </message>
        <message>
            <source>none</source>
            <translation>keine</translation>
        </message>
        <message>
            <source>{items} and {last}</source>
            <translation>{items} und {last}</translation>
        </message>
        <message>
            <source>{items} or {last}</source>
            <translation>{items} oder {last}</translation>
        </message>
        <message>
            <source>{need} — {now}</source>
            <translation>{need} — {now}</translation>
        </message>
        <message>
            <source>no group</source>
            <translation>keine Gruppe</translation>
        </message>
        <message>
            <source>needs your groups {wanted} — you are in {value}</source>
            <translation>braucht die Gruppen {wanted} — Sie sind in {value}</translation>
        </message>
        <message>
            <source>needs group {group} — you are in {value}</source>
            <translation>braucht Gruppe {group} — Sie sind in {value}</translation>
        </message>
        <message>
            <source>is closed to group {group} — you are in {value}</source>
            <translation>ist für Gruppe {group} gesperrt — Sie sind in {value}</translation>
        </message>
        <message>
            <source>needs the account {wanted} — you are signed in as {value}</source>
            <translation>braucht das Konto {wanted} — Sie sind als {value} angemeldet</translation>
        </message>
        <message>
            <source>is open only {when} — it is now {value}</source>
            <translation>ist nur {when} offen — jetzt ist es {value}</translation>
        </message>
        <message>
            <source>is open only {when} — today is {value}</source>
            <translation>ist nur {when} offen — heute ist {value}</translation>
        </message>
        <message>
            <source>it could not be checked</source>
            <translation>konnte nicht geprüft werden</translation>
        </message>
        <message>
            <source>it is not known</source>
            <translation>ist unbekannt</translation>
        </message>
        <message>
            <source>needs {subject} not reported — it is {value}</source>
            <translation>braucht {subject} nicht gemeldet — derzeit: {value}</translation>
        </message>
        <message>
            <source>needs {subject} to be checked</source>
            <translation>braucht eine Prüfung von {subject}</translation>
        </message>
        <message>
            <source>it is not reported</source>
            <translation>wird nicht gemeldet</translation>
        </message>
        <message>
            <source>it is {value}</source>
            <translation>derzeit: {value}</translation>
        </message>
        <message>
            <source>needs {subject} {state}</source>
            <translation>braucht {subject} {state}</translation>
        </message>
        <message>
            <source>needs {subject} {wanted}</source>
            <translation>braucht {subject} {wanted}</translation>
        </message>
        <message>
            <source>needs a risk score of at most {limit} — yours is {value}</source>
            <translation>braucht einen Risikowert von höchstens {limit} — Ihrer ist {value}</translation>
        </message>
        <message>
            <source>needs a risk score {wanted} — yours is {value}</source>
            <translation>braucht einen Risikowert {wanted} — Ihrer ist {value}</translation>
        </message>
    </context>
    <context>
        <name>core.policy.risk</name>
        <message>
            <source>A burst of connections</source>
            <translation>Viele Verbindungen in kurzer Zeit</translation>
        </message>
        <message>
            <source>An app reached a resource for the first time</source>
            <translation>Eine App hat erstmals eine Ressource erreicht</translation>
        </message>
        <message>
            <source>Many connections refused in a row</source>
            <translation>Viele abgelehnte Verbindungen in Folge</translation>
        </message>
        <message>
            <source>Activity at an unusual hour</source>
            <translation>Aktivität zu ungewöhnlicher Uhrzeit</translation>
        </message>
        <message>
            <source>{label} {state}</source>
            <translation>{label} {state}</translation>
        </message>
    </context>
    <context>
        <name>core.policy.trust</name>
        <message>
            <source>No policy trust anchors are configured: this device trusts the policy root key {keys} because it was the first one seen (pinned in {path}). Fine for a development setup; a managed device needs policy_trust_anchors.</source>
            <translation>Keine Vertrauensanker für Richtlinien konfiguriert: Dieses Gerät vertraut dem Stammschlüssel {keys}, weil er als erster gesehen wurde (festgelegt in {path}). Für eine Entwicklungsumgebung in Ordnung; ein verwaltetes Gerät braucht policy_trust_anchors.</translation>
        </message>
    </context>
    <context>
        <name>core.posture.errors</name>
        <message>
            <source>This device's security checks could not run</source>
            <translation>Die Sicherheitsprüfungen dieses Geräts konnten nicht laufen</translation>
        </message>
        <message>
            <source>Ask IT which system tool the security checks need on this device.</source>
            <translation>Fragen Sie die IT, welches Systemtool die Sicherheitsprüfungen auf diesem Gerät brauchen.</translation>
        </message>
        <message>
            <source>The security check settings are not valid</source>
            <translation>Die Einstellungen der Sicherheitsprüfungen sind ungültig</translation>
        </message>
        <message>
            <source>Contact IT: the organization's posture configuration needs fixing.</source>
            <translation>Wenden Sie sich an die IT: Die Gerätezustands-Konfiguration der Organisation muss korrigiert werden.</translation>
        </message>
    </context>
    <context>
        <name>core.posture.remediation</name>
        <message>
            <source>Encrypt the system disk: Linux full-disk encryption (LUKS) is chosen at install time — reinstall with disk encryption or ask IT.</source>
            <translation>Systemlaufwerk verschlüsseln: Die Linux-Festplattenverschlüsselung (LUKS) wird bei der Installation gewählt — mit Festplattenverschlüsselung neu installieren oder die IT fragen.</translation>
        </message>
        <message>
            <source>Turn on BitLocker: Settings → Privacy &amp; security → Device encryption, or as administrator: manage-bde -on C:</source>
            <translation>BitLocker aktivieren: Einstellungen → Datenschutz und Sicherheit → Geräteverschlüsselung, oder als Administrator: manage-bde -on C:</translation>
        </message>
        <message>
            <source>Turn on FileVault: System Settings → Privacy &amp; Security → FileVault → Turn On, or: sudo fdesetup enable</source>
            <translation>FileVault aktivieren: Systemeinstellungen → Datenschutz &amp; Sicherheit → FileVault → Einschalten, oder: sudo fdesetup enable</translation>
        </message>
        <message>
            <source>Turn on the firewall: sudo ufw enable (or: sudo systemctl enable --now firewalld)</source>
            <translation>Firewall aktivieren: sudo ufw enable (oder: sudo systemctl enable --now firewalld)</translation>
        </message>
        <message>
            <source>Turn on Windows Firewall for every network profile: as administrator, netsh advfirewall set allprofiles state on</source>
            <translation>Windows-Firewall für jedes Netzwerkprofil aktivieren: als Administrator netsh advfirewall set allprofiles state on</translation>
        </message>
        <message>
            <source>Turn on the firewall: System Settings → Network → Firewall, or: sudo /usr/libexec/ApplicationFirewall/socketfilterfw --setglobalstate on</source>
            <translation>Firewall aktivieren: Systemeinstellungen → Netzwerk → Firewall, oder: sudo /usr/libexec/ApplicationFirewall/socketfilterfw --setglobalstate on</translation>
        </message>
        <message>
            <source>Turn on the automatic screen lock: gsettings set org.gnome.desktop.screensaver lock-enabled true &amp;&amp; gsettings set org.gnome.desktop.session idle-delay 300</source>
            <translation>Automatische Bildschirmsperre aktivieren: gsettings set org.gnome.desktop.screensaver lock-enabled true &amp;&amp; gsettings set org.gnome.desktop.session idle-delay 300</translation>
        </message>
        <message>
            <source>Turn on a password-protected screen saver: Settings → Personalization → Lock screen → Screen saver, tick “On resume, display logon screen”</source>
            <translation>Kennwortgeschützten Bildschirmschoner aktivieren: Einstellungen → Personalisierung → Sperrbildschirm → Bildschirmschoner, „Anmeldeseite bei Reaktivierung“ ankreuzen</translation>
        </message>
        <message>
            <source>Require a password when the screen saver starts: System Settings → Lock Screen → “Require password after screen saver begins” → Immediately</source>
            <translation>Passwort beim Start des Bildschirmschoners verlangen: Systemeinstellungen → Sperrbildschirm → „Passwort erforderlich nach Beginn des Bildschirmschoners“ → Sofort</translation>
        </message>
        <message>
            <source>Lock the screen sooner: gsettings set org.gnome.desktop.session idle-delay 300</source>
            <translation>Bildschirm früher sperren: gsettings set org.gnome.desktop.session idle-delay 300</translation>
        </message>
        <message>
            <source>Lock the screen sooner: Settings → Personalization → Lock screen → Screen saver → Wait 5 minutes</source>
            <translation>Bildschirm früher sperren: Einstellungen → Personalisierung → Sperrbildschirm → Bildschirmschoner → Wartezeit 5 Minuten</translation>
        </message>
        <message>
            <source>Lock the screen sooner: System Settings → Lock Screen → “Start Screen Saver when inactive” → 5 minutes</source>
            <translation>Bildschirm früher sperren: Systemeinstellungen → Sperrbildschirm → „Bildschirmschoner starten, wenn inaktiv“ → 5 Minuten</translation>
        </message>
        <message>
            <source>Turn on automatic security updates: sudo apt install unattended-upgrades &amp;&amp; sudo dpkg-reconfigure -plow unattended-upgrades (Fedora: sudo systemctl enable --now dnf-automatic-install.timer)</source>
            <translation>Automatische Sicherheitsupdates aktivieren: sudo apt install unattended-upgrades &amp;&amp; sudo dpkg-reconfigure -plow unattended-upgrades (Fedora: sudo systemctl enable --now dnf-automatic-install.timer)</translation>
        </message>
        <message>
            <source>Turn on automatic updates: Settings → Windows Update; if a policy turned them off, ask IT</source>
            <translation>Automatische Updates aktivieren: Einstellungen → Windows Update; falls eine Richtlinie sie abgeschaltet hat, die IT fragen</translation>
        </message>
        <message>
            <source>Turn on automatic updates: System Settings → General → Software Update → Automatic updates, or: sudo softwareupdate --schedule on</source>
            <translation>Automatische Updates aktivieren: Systemeinstellungen → Allgemein → Softwareupdate → Automatische Updates, oder: sudo softwareupdate --schedule on</translation>
        </message>
        <message>
            <source>Turn on Secure Boot in the UEFI firmware setup, then check with: mokutil --sb-state</source>
            <translation>Secure Boot im UEFI-Firmware-Setup aktivieren, dann prüfen mit: mokutil --sb-state</translation>
        </message>
        <message>
            <source>Turn on Secure Boot in the UEFI firmware settings (Settings → System → Recovery → Advanced startup → UEFI Firmware Settings)</source>
            <translation>Secure Boot in den UEFI-Firmwareeinstellungen aktivieren (Einstellungen → System → Wiederherstellung → Erweiterter Start → UEFI-Firmwareeinstellungen)</translation>
        </message>
        <message>
            <source>Set Secure Boot to Full Security in Startup Security Utility (start up in macOS Recovery)</source>
            <translation>Secure Boot im Startsicherheitsdienstprogramm auf „Volle Sicherheit“ setzen (in macOS-Wiederherstellung starten)</translation>
        </message>
        <message>
            <source>Start the antivirus/EDR agent IT installed (e.g. sudo systemctl start clamav-daemon), or ask IT to install it</source>
            <translation>Den von der IT installierten Antivirus-/EDR-Agent starten (z. B. sudo systemctl start clamav-daemon) oder die IT bitten, ihn zu installieren</translation>
        </message>
        <message>
            <source>Turn on real-time protection: Windows Security → Virus &amp; threat protection → Manage settings</source>
            <translation>Echtzeitschutz aktivieren: Windows-Sicherheit → Viren- &amp; Bedrohungsschutz → Einstellungen verwalten</translation>
        </message>
        <message>
            <source>Start the antivirus/EDR agent IT installed, or ask IT to install it</source>
            <translation>Den von der IT installierten Antivirus-/EDR-Agent starten oder die IT bitten, ihn zu installieren</translation>
        </message>
        <message>
            <source>Ask IT to enroll this device in device management</source>
            <translation>Die IT bitten, dieses Gerät in der Geräteverwaltung zu registrieren</translation>
        </message>
        <message>
            <source>Enroll the device: Settings → Accounts → Access work or school → Connect</source>
            <translation>Gerät registrieren: Einstellungen → Konten → Auf Arbeits- oder Schulkonto zugreifen → Verbinden</translation>
        </message>
        <message>
            <source>Enroll the device: System Settings → Privacy &amp; Security → Profiles, or: sudo profiles renew -type enrollment</source>
            <translation>Gerät registrieren: Systemeinstellungen → Datenschutz &amp; Sicherheit → Profile, oder: sudo profiles renew -type enrollment</translation>
        </message>
        <message>
            <source>Join the company domain: sudo realm join &lt;domain&gt; (ask IT)</source>
            <translation>Der Firmendomäne beitreten: sudo realm join &lt;domain&gt; (die IT fragen)</translation>
        </message>
        <message>
            <source>Join the company: Settings → Accounts → Access work or school → Connect (ask IT)</source>
            <translation>Dem Unternehmen beitreten: Einstellungen → Konten → Auf Arbeits- oder Schulkonto zugreifen → Verbinden (die IT fragen)</translation>
        </message>
        <message>
            <source>Bind this Mac to the directory with Directory Utility (ask IT)</source>
            <translation>Diesen Mac mit dem Verzeichnisdienste-Dienstprogramm an das Verzeichnis binden (die IT fragen)</translation>
        </message>
        <message>
            <source>Update the system: sudo apt update &amp;&amp; sudo apt full-upgrade</source>
            <translation>System aktualisieren: sudo apt update &amp;&amp; sudo apt full-upgrade</translation>
        </message>
        <message>
            <source>Update Windows: Settings → Windows Update → Check for updates</source>
            <translation>Windows aktualisieren: Einstellungen → Windows Update → Nach Updates suchen</translation>
        </message>
        <message>
            <source>Update macOS: System Settings → General → Software Update</source>
            <translation>macOS aktualisieren: Systemeinstellungen → Allgemein → Softwareupdate</translation>
        </message>
        <message>
            <source>Update Rustronaut to the latest version</source>
            <translation>Rustronaut auf die neueste Version aktualisieren</translation>
        </message>
        <message>
            <source>The device's serial number is needed: ask IT</source>
            <translation>Die Seriennummer des Geräts wird benötigt: wenden Sie sich an die IT</translation>
        </message>
        <message>
            <source>Start “{name}” (it must be running), or ask IT to install it</source>
            <translation>„{name}“ starten (es muss laufen) oder die IT bitten, es zu installieren</translation>
        </message>
        <message>
            <source>The file {path} must exist: reinstall the company's management agent or ask IT</source>
            <translation>Die Datei {path} muss vorhanden sein: den Verwaltungsagent des Unternehmens neu installieren oder die IT fragen</translation>
        </message>
        <message>
            <source>Update the operating system</source>
            <translation>Betriebssystem aktualisieren</translation>
        </message>
        <message>
            <source>This device does not meet the requirement on {name}: ask IT</source>
            <translation>Dieses Gerät erfüllt die Anforderung an {name} nicht: wenden Sie sich an die IT</translation>
        </message>
    </context>
    <context>
        <name>core.proxy.answers</name>
        <message>
            <source>Rule:</source>
            <translation>Regel:</translation>
        </message>
        <message>
            <source>Rustronaut: {title}</source>
            <translation>Rustronaut: {title}</translation>
        </message>
        <message>
            <source>Access blocked</source>
            <translation>Zugriff gesperrt</translation>
        </message>
        <message>
            <source>Bad destination</source>
            <translation>Ungültiges Ziel</translation>
        </message>
        <message>
            <source>the destination did not answer in time</source>
            <translation>das Ziel hat nicht rechtzeitig geantwortet</translation>
        </message>
        <message>
            <source>Cannot reach destination</source>
            <translation>Ziel nicht erreichbar</translation>
        </message>
    </context>
    <context>
        <name>core.proxy.errors</name>
        <message>
            <source>The local proxy has a problem</source>
            <translation>Der lokale Proxy hat ein Problem</translation>
        </message>
        <message>
            <source>Not a valid destination</source>
            <translation>Kein gültiges Ziel</translation>
        </message>
        <message>
            <source>Check the host name and port, then try again.</source>
            <translation>Prüfen Sie Hostname und Port und versuchen Sie es dann erneut.</translation>
        </message>
        <message>
            <source>The local proxy could not start</source>
            <translation>Der lokale Proxy konnte nicht starten</translation>
        </message>
        <message>
            <source>Another program may use the proxy port: close it, or choose another port (rustronaut config set proxy_port PORT), then connect again.</source>
            <translation>Evtl. nutzt ein anderes Programm den Proxy-Port: Schließen Sie es oder wählen Sie einen anderen Port (rustronaut config set proxy_port PORT) und verbinden Sie dann erneut.</translation>
        </message>
    </context>
    <context>
        <name>core.settings.errors</name>
        <message>
            <source>The setting could not be changed</source>
            <translation>Die Einstellung konnte nicht geändert werden</translation>
        </message>
        <message>
            <source>Check the setting's name and value (rustronaut config show) and try again.</source>
            <translation>Prüfen Sie Name und Wert der Einstellung (rustronaut config show) und versuchen Sie es erneut.</translation>
        </message>
        <message>
            <source>Not a valid setting</source>
            <translation>Keine gültige Einstellung</translation>
        </message>
        <message>
            <source>This setting is managed by your organization</source>
            <translation>Diese Einstellung wird von Ihrer Organisation verwaltet</translation>
        </message>
        <message>
            <source>Ask IT if it needs to be different.</source>
            <translation>Wenden Sie sich an die IT, wenn sie anders sein muss.</translation>
        </message>
        <message>
            <source>The settings file could not be saved</source>
            <translation>Die Einstellungsdatei konnte nicht gespeichert werden</translation>
        </message>
        <message>
            <source>Check that your disk is not full and your settings folder is writable.</source>
            <translation>Prüfen Sie, ob Ihr Datenträger voll ist und ob Ihr Einstellungsordner beschreibbar ist.</translation>
        </message>
    </context>
    <context>
        <name>core.settings.loader</name>
        <message>
            <source>{key} is set by your organization ({origin}) and cannot be changed here</source>
            <translation>{key} ist von Ihrer Organisation festgelegt ({origin}) und kann hier nicht geändert werden</translation>
        </message>
    </context>
    <context>
        <name>core.settings.model</name>
        <message>
            <source>true or false</source>
            <translation>true oder false</translation>
        </message>
        <message>
            <source>a whole number from {minimum} to {maximum}</source>
            <translation>eine ganze Zahl von {minimum} bis {maximum}</translation>
        </message>
        <message>
            <source>one of {choices}</source>
            <translation>eines von {choices}</translation>
        </message>
        <message>
            <source>a list of strings, each {what}</source>
            <translation>eine Liste von Zeichenketten, jeweils {what}</translation>
        </message>
        <message>
            <source>more than {count} items</source>
            <translation>mehr als {count} Einträge</translation>
        </message>
        <message>
            <source>item {index}</source>
            <translation>Eintrag {index}</translation>
        </message>
        <message>
            <source>{where} is empty</source>
            <translation>{where} ist leer</translation>
        </message>
        <message>
            <source>longer than {count} characters</source>
            <translation>länger als {count} Zeichen</translation>
        </message>
        <message>
            <source>contains a NUL character</source>
            <translation>enthält ein NUL-Zeichen</translation>
        </message>
        <message>
            <source>not an absolute http(s) URL</source>
            <translation>keine absolute http(s)-URL</translation>
        </message>
        <message>
            <source>URL contains whitespace</source>
            <translation>URL enthält Leerzeichen</translation>
        </message>
        <message>
            <source>invalid port</source>
            <translation>ungültiger Port</translation>
        </message>
        <message>
            <source>http:// is allowed only for loopback; use https://</source>
            <translation>http:// ist nur für Loopback erlaubt; verwenden Sie https://</translation>
        </message>
        <message>
            <source>credentials in the URL are not allowed</source>
            <translation>Zugangsdaten in der URL sind nicht erlaubt</translation>
        </message>
        <message>
            <source>not valid base64</source>
            <translation>kein gültiges base64</translation>
        </message>
        <message>
            <source>decodes to {count} bytes, not 32</source>
            <translation>ergibt dekodiert {count} Bytes statt 32</translation>
        </message>
        <message>
            <source>must be 43 characters of base64url (a 32-byte Ed25519 key)</source>
            <translation>muss 43 Zeichen base64url sein (ein 32-Byte-Ed25519-Schlüssel)</translation>
        </message>
        <message>
            <source>not valid base64url (A-Z a-z 0-9 - _)</source>
            <translation>kein gültiges base64url (A-Z a-z 0-9 - _)</translation>
        </message>
        <message>
            <source>not in canonical base64url (its last character is off)</source>
            <translation>kein kanonisches base64url (das letzte Zeichen stimmt nicht)</translation>
        </message>
        <message>
            <source>not a version like 1.4.0 (MAJOR.MINOR.PATCH)</source>
            <translation>keine Version wie 1.4.0 (MAJOR.MINOR.PATCH)</translation>
        </message>
        <message>
            <source>text</source>
            <translation>Text</translation>
        </message>
        <message>
            <source>an https:// URL (http:// only for a loopback address)</source>
            <translation>eine https://-URL (http:// nur für eine Loopback-Adresse)</translation>
        </message>
        <message>
            <source>an http(s):// URL</source>
            <translation>eine http(s)://-URL</translation>
        </message>
        <message>
            <source>base64 of a 32-byte SHA-256 SPKI hash</source>
            <translation>base64 eines 32-Byte-SHA-256-SPKI-Hashs</translation>
        </message>
        <message>
            <source>base64url of a 32-byte Ed25519 public key</source>
            <translation>base64url eines öffentlichen Ed25519-Schlüssels (32 Byte)</translation>
        </message>
        <message>
            <source>a version like 1.4.0</source>
            <translation>eine Version wie 1.4.0</translation>
        </message>
        <message>
            <source>Controller URL</source>
            <translation>Controller-URL</translation>
        </message>
        <message>
            <source>Address of the Rustronaut controller the client enrolls with and fetches its signed policy from. Must be https:// (http:// is accepted only for a loopback address, for local testing). Empty means not configured yet.</source>
            <translation>Adresse des Rustronaut-Controllers, bei dem sich der Client registriert und von dem er seine signierte Richtlinie lädt. Muss https:// sein (http:// wird nur für eine Loopback-Adresse akzeptiert, für lokale Tests). Leer bedeutet: noch nicht konfiguriert.</translation>
        </message>
        <message>
            <source>Connection</source>
            <translation>Verbindung</translation>
        </message>
        <message>
            <source>OpenID Connect issuer</source>
            <translation>OpenID-Connect-Issuer</translation>
        </message>
        <message>
            <source>Issuer URL of the company's OpenID Connect provider used for sign-in (discovery is read from &lt;issuer&gt;/.well-known/openid-configuration).</source>
            <translation>Issuer-URL des OpenID-Connect-Anbieters des Unternehmens für die Anmeldung (Discovery wird aus &lt;issuer&gt;/.well-known/openid-configuration gelesen).</translation>
        </message>
        <message>
            <source>Sign-in</source>
            <translation>Anmeldung</translation>
        </message>
        <message>
            <source>OpenID Connect client id</source>
            <translation>OpenID-Connect-Client-ID</translation>
        </message>
        <message>
            <source>Client id of the desktop app registered at the OpenID Connect provider (a public, native client using PKCE).</source>
            <translation>Client-ID der beim OpenID-Connect-Anbieter registrierten Desktop-App (ein öffentlicher, nativer Client mit PKCE).</translation>
        </message>
        <message>
            <source>Sign out at the identity provider too</source>
            <translation>Auch beim Identitätsanbieter abmelden</translation>
        </message>
        <message>
            <source>On sign-out, also end the session at the identity provider: its logout page opens in the browser (when the provider offers one), so the next sign-in asks for the password again. The tokens are revoked either way.</source>
            <translation>Beim Abmelden auch die Sitzung beim Identitätsanbieter beenden: Dessen Abmeldeseite öffnet sich im Browser (sofern der Anbieter eine hat), sodass bei der nächsten Anmeldung erneut das Passwort abgefragt wird. Die Tokens werden in jedem Fall widerrufen.</translation>
        </message>
        <message>
            <source>Connect automatically</source>
            <translation>Automatisch verbinden</translation>
        </message>
        <message>
            <source>Connect as soon as the user is signed in and the app starts.</source>
            <translation>Verbinden, sobald der Benutzer angemeldet ist und die App startet.</translation>
        </message>
        <message>
            <source>Always-on</source>
            <translation>Always-on (immer verbunden)</translation>
        </message>
        <message>
            <source>Keep the connection up at all times; disconnecting then needs a break-glass reason (if allowed) and is reported to the controller.</source>
            <translation>Verbindung ständig halten; Trennen erfordert dann einen Grund für den Notfallzugang (falls erlaubt) und wird dem Controller gemeldet.</translation>
        </message>
        <message>
            <source>Allow break-glass disconnect</source>
            <translation>Trennen per Notfallzugang erlauben</translation>
        </message>
        <message>
            <source>Under always-on, let the user disconnect after giving a reason.</source>
            <translation>Bei Always-on darf der Benutzer nach Angabe eines Grundes trennen.</translation>
        </message>
        <message>
            <source>Preferred WireGuard backend</source>
            <translation>Bevorzugtes WireGuard-Backend</translation>
        </message>
        <message>
            <source>Which WireGuard backend the helper uses; 'auto' picks the best available one on this machine.</source>
            <translation>Welches WireGuard-Backend der Hilfsdienst verwendet; 'auto' wählt das beste auf diesem Rechner verfügbare.</translation>
        </message>
        <message>
            <source>Local proxy port</source>
            <translation>Port des lokalen Proxys</translation>
        </message>
        <message>
            <source>Loopback TCP port of the local proxy; the same port serves SOCKS5 and HTTP CONNECT.</source>
            <translation>Loopback-TCP-Port des lokalen Proxys; derselbe Port bedient SOCKS5 und HTTP CONNECT.</translation>
        </message>
        <message>
            <source>Transparent mode</source>
            <translation>Transparenter Modus</translation>
        </message>
        <message>
            <source>Decide every app's connections to company resources without proxy settings: the helper redirects them to the local decider (Linux; elsewhere apps use the proxy port or the PAC file). Only the decider may send into the tunnel (kill switch). Off: only apps pointed at the proxy reach company resources.</source>
            <translation>Über die Verbindungen aller Apps zu Unternehmensressourcen ohne Proxy-Einstellungen entscheiden: Der Hilfsdienst leitet sie an den lokalen Entscheider um (Linux; anderswo nutzen Apps den Proxy-Port oder die PAC-Datei). Nur der Entscheider darf in den Tunnel senden (Kill-Switch). Aus: Nur Apps, die auf den Proxy eingestellt sind, erreichen Unternehmensressourcen.</translation>
        </message>
        <message>
            <source>Transparent mode port</source>
            <translation>Port für transparenten Modus</translation>
        </message>
        <message>
            <source>Loopback TCP port where the helper's redirect hands apps' connections to the decider (never a proxy: a direct connection to it is refused).</source>
            <translation>Loopback-TCP-Port, an dem die Umleitung des Hilfsdienstes die Verbindungen der Apps an den Entscheider übergibt (nie ein Proxy: Eine direkte Verbindung dorthin wird abgelehnt).</translation>
        </message>
        <message>
            <source>Controller TLS pins</source>
            <translation>TLS-Pins des Controllers</translation>
        </message>
        <message>
            <source>Optional SHA-256 pins (base64) of the controller's TLS SubjectPublicKeyInfo; when set, a connection is accepted only if one certificate in the chain matches one pin, in addition to normal verification.</source>
            <translation>Optionale SHA-256-Pins (base64) der TLS-SubjectPublicKeyInfo des Controllers; wenn gesetzt, wird eine Verbindung zusätzlich zur normalen Prüfung nur akzeptiert, wenn ein Zertifikat der Kette zu einem Pin passt.</translation>
        </message>
        <message>
            <source>Policy trust anchors</source>
            <translation>Vertrauensanker für Richtlinien</translation>
        </message>
        <message>
            <source>The organisation's policy root keys: Ed25519 public keys (base64url of the raw 32 bytes, the 'x' of the key's JWK; the controller prints it with 'rustronaut-controller keys root'). Only policy signed by one of them, or by a key one of them endorsed, is used; the controller's discovery answer can never add one. Empty: the first root seen is pinned with a warning (development only).</source>
            <translation>Die Stammschlüssel der Organisation für Richtlinien: öffentliche Ed25519-Schlüssel (base64url der rohen 32 Bytes, das 'x' im JWK des Schlüssels; der Controller gibt es mit 'rustronaut-controller keys root' aus). Nur Richtlinien, die von einem davon oder von einem davon bestätigten Schlüssel signiert sind, werden verwendet; die Discovery-Antwort des Controllers kann nie einen hinzufügen. Leer: Der erste gesehene Stammschlüssel wird mit einer Warnung festgelegt (nur für Entwicklung).</translation>
        </message>
        <message>
            <source>Automatic updates</source>
            <translation>Automatische Updates</translation>
        </message>
        <message>
            <source>Install new releases on Windows and macOS by themselves: the client fetches the signed update manifest from the update URL and the privileged helper verifies it with the update keys, downloads the installer into its own admin-only directory, checks it again and runs it. Older and expired releases are always refused. The helper obeys only the managed value (MDM, Group Policy). Linux is updated from the apt or dnf repository instead.</source>
            <translation>Neue Versionen unter Windows und macOS selbst installieren: Der Client lädt das signierte Update-Manifest von der Update-URL, der privilegierte Hilfsdienst prüft es mit den Update-Schlüsseln, lädt das Installationsprogramm in sein nur für Administratoren zugängliches Verzeichnis, prüft es erneut und führt es aus. Ältere und abgelaufene Versionen werden immer abgelehnt. Der Hilfsdienst folgt nur dem verwalteten Wert (MDM, Gruppenrichtlinie). Linux wird stattdessen über das apt- oder dnf-Repository aktualisiert.</translation>
        </message>
        <message>
            <source>Updates</source>
            <translation>Updates</translation>
        </message>
        <message>
            <source>Update manifest URL</source>
            <translation>URL des Update-Manifests</translation>
        </message>
        <message>
            <source>Address of the signed update manifest (https://; http:// only for a loopback address). With a pinned version, point it at that version's manifest. Empty: no automatic updates.</source>
            <translation>Adresse des signierten Update-Manifests (https://; http:// nur für eine Loopback-Adresse). Bei einer festgelegten Version auf das Manifest dieser Version zeigen. Leer: keine automatischen Updates.</translation>
        </message>
        <message>
            <source>Update signing keys</source>
            <translation>Signaturschlüssel für Updates</translation>
        </message>
        <message>
            <source>Ed25519 public keys (base64url of the raw 32 bytes) allowed to sign update manifests. The privileged helper reads only the managed value. Empty: no automatic updates.</source>
            <translation>Öffentliche Ed25519-Schlüssel (base64url der 32 Rohbytes), die Update-Manifeste signieren dürfen. Der privilegierte Hilfsdienst liest nur den verwalteten Wert. Leer: keine automatischen Updates.</translation>
        </message>
        <message>
            <source>Pinned version</source>
            <translation>Festgelegte Version</translation>
        </message>
        <message>
            <source>Install only this release (MAJOR.MINOR.PATCH); any other version is refused. A pin never downgrades: a version older than the installed one is refused. Empty: the newest signed release.</source>
            <translation>Nur diese Version installieren (MAJOR.MINOR.PATCH); jede andere wird abgelehnt. Eine Festlegung stuft nie herab: Eine ältere Version als die installierte wird abgelehnt. Leer: die neueste signierte Version.</translation>
        </message>
        <message>
            <source>Log level</source>
            <translation>Protokollstufe</translation>
        </message>
        <message>
            <source>Least severe level written to the client's log files.</source>
            <translation>Niedrigste Stufe, die in die Protokolldateien des Clients geschrieben wird.</translation>
        </message>
        <message>
            <source>Support</source>
            <translation>Support</translation>
        </message>
        <message>
            <source>Support URL</source>
            <translation>Support-URL</translation>
        </message>
        <message>
            <source>Link shown to users in error messages and the About dialog for help.</source>
            <translation>Hilfe-Link, der Benutzern in Fehlermeldungen und im Dialog „Über“ angezeigt wird.</translation>
        </message>
        <message>
            <source>Organization name</source>
            <translation>Name der Organisation</translation>
        </message>
        <message>
            <source>Name of the organization shown in the app.</source>
            <translation>Name der Organisation, der in der App angezeigt wird.</translation>
        </message>
        <message>
            <source>Decision reports to IT</source>
            <translation>Entscheidungsberichte an die IT</translation>
        </message>
        <message>
            <source>What the client tells the organization's controller about the access decisions it makes: off (nothing), counts (per minute, how many connections to each resource were allowed or denied; no apps, no destinations) or full (each decision: time, app, destination, rule, reason and risk). Sent in batches signed with the device key; kept on disk while offline.</source>
            <translation>Was der Client dem Controller der Organisation über seine Zugriffsentscheidungen mitteilt: off (nichts), counts (pro Minute, wie viele Verbindungen zu jeder Ressource erlaubt oder abgelehnt wurden; keine Apps, keine Ziele) oder full (jede Entscheidung: Zeit, App, Ziel, Regel, Grund und Risiko). Wird in Stapeln gesendet, die mit dem Geräteschlüssel signiert sind; offline auf der Festplatte aufbewahrt.</translation>
        </message>
        <message>
            <source>Privacy</source>
            <translation>Datenschutz</translation>
        </message>
        <message>
            <source>Hide app paths in decision reports</source>
            <translation>App-Pfade in Entscheidungsberichten verbergen</translation>
        </message>
        <message>
            <source>At the full level, send each app's path as a SHA-256 hash salted with the controller URL instead of the path itself: IT can recognize a known app by hashing its path the same way, but never sees the employee's own paths.</source>
            <translation>Auf der Stufe „full“ wird der Pfad jeder App als SHA-256-Hash (mit der Controller-URL gesalzen) statt des Pfads selbst gesendet: Die IT erkennt eine bekannte App, indem sie deren Pfad ebenso hasht, sieht aber nie die eigenen Pfade der Mitarbeitenden.</translation>
        </message>
        <message>
            <source>Posture check interval (minutes)</source>
            <translation>Intervall der Gerätezustandsprüfung (Minuten)</translation>
        </message>
        <message>
            <source>How often the full device posture is collected and reported.</source>
            <translation>Wie oft der vollständige Gerätezustand erfasst und gemeldet wird.</translation>
        </message>
        <message>
            <source>Posture</source>
            <translation>Gerätezustand</translation>
        </message>
        <message>
            <source>Posture watch interval (seconds)</source>
            <translation>Überwachungsintervall des Gerätezustands (Sekunden)</translation>
        </message>
        <message>
            <source>How often quick posture facts (firewall, screen lock, required processes) are re-checked between full reports.</source>
            <translation>Wie oft schnelle Gerätezustandsangaben (Firewall, Bildschirmsperre, erforderliche Prozesse) zwischen vollständigen Berichten erneut geprüft werden.</translation>
        </message>
        <message>
            <source>Required processes</source>
            <translation>Erforderliche Prozesse</translation>
        </message>
        <message>
            <source>Process names that must be running (e.g. an EDR agent); reported as posture facts for the policy.</source>
            <translation>Prozessnamen, die laufen müssen (z. B. ein EDR-Agent); werden der Richtlinie als Gerätezustandsangaben gemeldet.</translation>
        </message>
        <message>
            <source>Required files</source>
            <translation>Erforderliche Dateien</translation>
        </message>
        <message>
            <source>Absolute paths that must exist (e.g. a management agent's marker file); reported as posture facts for the policy.</source>
            <translation>Absolute Pfade, die vorhanden sein müssen (z. B. die Markierungsdatei eines Verwaltungsagenten); werden der Richtlinie als Gerätezustandsangaben gemeldet.</translation>
        </message>
        <message>
            <source>Start at login</source>
            <translation>Bei Systemanmeldung starten</translation>
        </message>
        <message>
            <source>Start the tray app when the user logs in.</source>
            <translation>Die Tray-App starten, wenn sich der Benutzer am Computer anmeldet.</translation>
        </message>
        <message>
            <source>Application</source>
            <translation>Anwendung</translation>
        </message>
        <message>
            <source>Notifications</source>
            <translation>Benachrichtigungen</translation>
        </message>
        <message>
            <source>Show desktop notifications for connection changes and blocked access.</source>
            <translation>Desktop-Benachrichtigungen bei Verbindungsänderungen und gesperrtem Zugriff anzeigen.</translation>
        </message>
    </context>
    <context>
        <name>core.update.errors</name>
        <message>
            <source>The update was not installed</source>
            <translation>Das Update wurde nicht installiert</translation>
        </message>
    </context>
    <context>
        <name>core.update.words</name>
        <message>
            <source>Nothing was installed. Tell IT: the update server may be misconfigured or tampered with.</source>
            <translation>Es wurde nichts installiert. Informieren Sie die IT: Der Update-Server ist vielleicht falsch eingerichtet oder manipuliert.</translation>
        </message>
        <message>
            <source>Nothing was installed; Rustronaut tries again in a few hours. If it keeps happening, contact IT.</source>
            <translation>Es wurde nichts installiert; Rustronaut versucht es in einigen Stunden erneut. Wenn es wieder passiert, wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>it is not signed by your organization's update key</source>
            <translation>es ist nicht mit dem Update-Schlüssel Ihrer Organisation signiert</translation>
        </message>
        <message>
            <source>its manifest is malformed</source>
            <translation>sein Manifest ist fehlerhaft</translation>
        </message>
        <message>
            <source>its signed manifest has expired (an old release was offered)</source>
            <translation>sein signiertes Manifest ist abgelaufen (eine alte Version wurde angeboten)</translation>
        </message>
        <message>
            <source>it is older than a release already seen (a rollback)</source>
            <translation>es ist älter als eine bereits gesehene Version (ein Rollback)</translation>
        </message>
        <message>
            <source>the download is not the size its signed manifest names</source>
            <translation>der Download hat nicht die Größe, die sein signiertes Manifest nennt</translation>
        </message>
        <message>
            <source>the installer does not match its signed hash</source>
            <translation>das Installationsprogramm passt nicht zu seinem signierten Hash</translation>
        </message>
        <message>
            <source>the installer failed</source>
            <translation>das Installationsprogramm ist fehlgeschlagen</translation>
        </message>
        <message>
            <source>Rustronaut keeps running the installed version. Collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Rustronaut läuft mit der installierten Version weiter. Sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>your organization pins another version</source>
            <translation>Ihre Organisation hat eine andere Version festgelegt</translation>
        </message>
        <message>
            <source>Nothing to do: IT chooses the version.</source>
            <translation>Nichts zu tun: Die IT wählt die Version.</translation>
        </message>
        <message>
            <source>your organization has turned automatic updates off</source>
            <translation>Ihre Organisation hat automatische Updates ausgeschaltet</translation>
        </message>
        <message>
            <source>Nothing to do: IT installs updates on this computer.</source>
            <translation>Nichts zu tun: Die IT installiert Updates auf diesem Computer.</translation>
        </message>
        <message>
            <source>this computer is not updated by Rustronaut itself</source>
            <translation>dieser Computer wird nicht von Rustronaut selbst aktualisiert</translation>
        </message>
        <message>
            <source>On Linux, update with your package manager (apt or dnf), as IT set it up.</source>
            <translation>Unter Linux aktualisieren Sie mit Ihrer Paketverwaltung (apt oder dnf), wie von der IT eingerichtet.</translation>
        </message>
        <message>
            <source>the Rustronaut helper service is not running</source>
            <translation>der Rustronaut-Hilfsdienst läuft nicht</translation>
        </message>
        <message>
            <source>Restart the computer (or reinstall Rustronaut), then run: rustronaut update</source>
            <translation>Starten Sie den Computer neu (oder installieren Sie Rustronaut neu) und führen Sie dann aus: rustronaut update</translation>
        </message>
        <message>
            <source>another update is being installed</source>
            <translation>ein anderes Update wird gerade installiert</translation>
        </message>
        <message>
            <source>Wait a few minutes, then run: rustronaut update</source>
            <translation>Warten Sie einige Minuten und führen Sie dann aus: rustronaut update</translation>
        </message>
        <message>
            <source>the update server could not be reached</source>
            <translation>der Update-Server war nicht erreichbar</translation>
        </message>
        <message>
            <source>the installer could not be downloaded</source>
            <translation>das Installationsprogramm konnte nicht geladen werden</translation>
        </message>
        <message>
            <source>The update to {version} did not install</source>
            <translation>Das Update auf {version} wurde nicht installiert</translation>
        </message>
        <message>
            <source>Rustronaut keeps running the installed version and tries again at the next check. If it keeps failing, collect diagnostics (rustronaut diag) and contact IT.</source>
            <translation>Rustronaut läuft mit der installierten Version weiter und versucht es bei der nächsten Prüfung erneut. Wenn es weiter fehlschlägt, sammeln Sie Diagnosedaten (rustronaut diag) und wenden Sie sich an die IT.</translation>
        </message>
        <message>
            <source>it could not be checked</source>
            <translation>es konnte nicht geprüft werden</translation>
        </message>
        <message>
            <source>this version is already installed</source>
            <translation>diese Version ist bereits installiert</translation>
        </message>
        <message>
            <source>Nothing to do.</source>
            <translation>Nichts zu tun.</translation>
        </message>
        <message>
            <source>Update refused: {reason}</source>
            <translation>Update abgelehnt: {reason}</translation>
        </message>
        <message>
            <source>Installing update {version}…</source>
            <translation>Update {version} wird installiert…</translation>
        </message>
        <message>
            <source>Updated to {version}</source>
            <translation>Aktualisiert auf {version}</translation>
        </message>
        <message>
            <source>Update {version} is available</source>
            <translation>Update {version} ist verfügbar</translation>
        </message>
        <message>
            <source>Rustronaut {version} is up to date</source>
            <translation>Rustronaut {version} ist aktuell</translation>
        </message>
        <message>
            <source>Automatic updates are off or not set up on this computer</source>
            <translation>Automatische Updates sind auf diesem Computer aus oder nicht eingerichtet</translation>
        </message>
    </context>
    <context>
        <name>core.wire.posture</name>
        <message>
            <source>on</source>
            <translation>an</translation>
        </message>
        <message>
            <source>off</source>
            <translation>aus</translation>
        </message>
        <message>
            <source>Operating system</source>
            <translation>Betriebssystem</translation>
        </message>
        <message>
            <source>the operating system</source>
            <translation>das Betriebssystem</translation>
        </message>
        <message>
            <source>Operating system edition</source>
            <translation>Betriebssystem-Edition</translation>
        </message>
        <message>
            <source>the operating system edition</source>
            <translation>die Betriebssystem-Edition</translation>
        </message>
        <message>
            <source>Operating system version</source>
            <translation>Betriebssystemversion</translation>
        </message>
        <message>
            <source>the operating system version</source>
            <translation>die Betriebssystemversion</translation>
        </message>
        <message>
            <source>Operating system build</source>
            <translation>Betriebssystem-Build</translation>
        </message>
        <message>
            <source>the operating system build</source>
            <translation>der Betriebssystem-Build</translation>
        </message>
        <message>
            <source>Kernel version</source>
            <translation>Kernel-Version</translation>
        </message>
        <message>
            <source>the kernel version</source>
            <translation>die Kernel-Version</translation>
        </message>
        <message>
            <source>Processor type</source>
            <translation>Prozessortyp</translation>
        </message>
        <message>
            <source>the processor type</source>
            <translation>der Prozessortyp</translation>
        </message>
        <message>
            <source>Computer name</source>
            <translation>Computername</translation>
        </message>
        <message>
            <source>the computer name</source>
            <translation>der Computername</translation>
        </message>
        <message>
            <source>Serial number</source>
            <translation>Seriennummer</translation>
        </message>
        <message>
            <source>the serial number</source>
            <translation>die Seriennummer</translation>
        </message>
        <message>
            <source>Rustronaut version</source>
            <translation>Rustronaut-Version</translation>
        </message>
        <message>
            <source>the Rustronaut version</source>
            <translation>die Rustronaut-Version</translation>
        </message>
        <message>
            <source>Disk encryption</source>
            <translation>Festplattenverschlüsselung</translation>
        </message>
        <message>
            <source>disk encryption</source>
            <translation>die Festplattenverschlüsselung</translation>
        </message>
        <message>
            <source>Firewall</source>
            <translation>Firewall</translation>
        </message>
        <message>
            <source>the firewall</source>
            <translation>die Firewall</translation>
        </message>
        <message>
            <source>Screen lock</source>
            <translation>Bildschirmsperre</translation>
        </message>
        <message>
            <source>the screen lock</source>
            <translation>die Bildschirmsperre</translation>
        </message>
        <message>
            <source>Screen lock delay</source>
            <translation>Verzögerung der Bildschirmsperre</translation>
        </message>
        <message>
            <source>the screen lock delay</source>
            <translation>die Verzögerung der Bildschirmsperre</translation>
        </message>
        <message>
            <source>Automatic updates</source>
            <translation>Automatische Updates</translation>
        </message>
        <message>
            <source>automatic updates</source>
            <translation>automatische Updates</translation>
        </message>
        <message>
            <source>Secure Boot</source>
            <translation>Secure Boot</translation>
        </message>
        <message>
            <source>Antivirus</source>
            <translation>Virenschutz</translation>
        </message>
        <message>
            <source>the antivirus</source>
            <translation>der Virenschutz</translation>
        </message>
        <message>
            <source>running</source>
            <translation>läuft</translation>
        </message>
        <message>
            <source>not running</source>
            <translation>läuft nicht</translation>
        </message>
        <message>
            <source>Antivirus products</source>
            <translation>Virenschutzprodukte</translation>
        </message>
        <message>
            <source>the antivirus products</source>
            <translation>die Virenschutzprodukte</translation>
        </message>
        <message>
            <source>Device management</source>
            <translation>Geräteverwaltung</translation>
        </message>
        <message>
            <source>this device</source>
            <translation>dieses Gerät</translation>
        </message>
        <message>
            <source>enrolled in device management</source>
            <translation>in der Geräteverwaltung registriert</translation>
        </message>
        <message>
            <source>not enrolled</source>
            <translation>nicht registriert</translation>
        </message>
        <message>
            <source>Company domain</source>
            <translation>Firmendomäne</translation>
        </message>
        <message>
            <source>joined to the company domain</source>
            <translation>Mitglied der Firmendomäne</translation>
        </message>
        <message>
            <source>not joined</source>
            <translation>kein Mitglied</translation>
        </message>
        <message>
            <source>Managed settings problem</source>
            <translation>Problem mit verwalteten Einstellungen</translation>
        </message>
        <message>
            <source>the managed settings problem</source>
            <translation>das Problem mit verwalteten Einstellungen</translation>
        </message>
        <message>
            <source>Program “{name}”</source>
            <translation>Programm „{name}“</translation>
        </message>
        <message>
            <source>the program “{name}”</source>
            <translation>das Programm „{name}“</translation>
        </message>
        <message>
            <source>File {path}</source>
            <translation>Datei {path}</translation>
        </message>
        <message>
            <source>the file {path}</source>
            <translation>die Datei {path}</translation>
        </message>
        <message>
            <source>present</source>
            <translation>vorhanden</translation>
        </message>
        <message>
            <source>missing</source>
            <translation>fehlt</translation>
        </message>
        <message>
            <source>yes</source>
            <translation>ja</translation>
        </message>
        <message>
            <source>no</source>
            <translation>nein</translation>
        </message>
    </context>
</TS>
