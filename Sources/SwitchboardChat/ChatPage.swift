import HTTPTypes
import Switchboard

/// The chat page: plain HTML, CSS and JavaScript compiled into the executable (no CDN, no build step).
///
/// It speaks the rooms protocol at `/ws` (docs/PROTOCOL.md): rooms as tabs, history on join, and after a dropped
/// connection it rejoins every room with the id of the last message it showed, so nothing sent meanwhile is lost
/// on screen. Every message is rendered with `textContent`, never parsed as HTML (the seed inserts raw HTML, an XSS
/// hole).
enum ChatPage {
    static func response(_ text: String, type: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        for (name, value) in Self.securityHeaders { headers[name] = value }
        return Response(headers: headers, body: .init(string: text))
    }

    /// No inline script or style, nothing from elsewhere, no framing (clickjacking), no MIME sniffing, no referrer.
    /// `connect-src 'self'` covers the page's own `ws:`/`wss:` origin (CSP level 3).
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (
            HTTPField.Name("Content-Security-Policy")!,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
    ]

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Switchboard chat</title>
        <link rel="stylesheet" href="/app.css">
        </head>
        <body>
        <header>
          <h1>Switchboard chat</h1>
          <span id="status" class="status connecting" role="status">connecting…</span>
        </header>
        <nav>
          <ul id="rooms" aria-label="rooms"></ul>
          <form id="join" autocomplete="off">
            <input id="room" maxlength="64" placeholder="room" aria-label="room to join" pattern="[A-Za-z0-9._\\-]+">
            <button type="submit">Join</button>
          </form>
        </nav>
        <div id="body">
          <main>
            <ul id="messages" aria-live="polite"></ul>
          </main>
          <aside aria-label="online">
            <h2>Online</h2>
            <ul id="online"></ul>
          </aside>
        </div>
        <form id="form" autocomplete="off">
          <input id="nickname" name="nickname" maxlength="32" placeholder="nickname" aria-label="nickname" required>
          <input id="message" name="message" maxlength="4000" placeholder="Say something…" aria-label="message" required>
          <button id="send" type="submit">Send</button>
        </form>
        <script src="/app.js"></script>
        </body>
        </html>

        """

    static let style = """
        * { box-sizing: border-box; }
        html, body { height: 100%; margin: 0; }
        body { display: flex; flex-direction: column; font: 16px/1.4 system-ui, sans-serif; color: #1d2327;
               background: #f6f7f7; max-width: 48rem; margin: 0 auto; }
        header { display: flex; align-items: center; justify-content: space-between; padding: .75rem 1rem;
                 border-bottom: 1px solid #dcdcde; background: #fff; }
        h1 { font-size: 1.15rem; margin: 0; }
        .status { font-size: .85rem; padding: .15rem .6rem; border-radius: 1rem; background: #dcdcde; }
        .status.open { background: #d1f0d6; color: #0a5c1a; }
        .status.closed { background: #fbe0e0; color: #8a1f1f; }
        nav { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; padding: .5rem 1rem;
              border-bottom: 1px solid #dcdcde; background: #fff; }
        #rooms { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; margin: 0; padding: 0; flex: 1; }
        #rooms li { padding: .2rem .7rem; border-radius: 1rem; background: #f0f0f1; cursor: pointer; }
        #rooms li.current { background: #2271b1; color: #fff; }
        #rooms li.unread::after { content: " •"; }
        #join { display: flex; gap: .35rem; }
        #room { width: 8rem; }
        #body { flex: 1; display: flex; min-height: 0; }
        main { flex: 1; overflow-y: auto; padding: .5rem 1rem; }
        aside { width: 10rem; overflow-y: auto; padding: .5rem 1rem; border-left: 1px solid #dcdcde; background: #fff; }
        aside h2 { font-size: .85rem; margin: 0 0 .4rem; color: #646970; text-transform: uppercase; }
        #online { list-style: none; margin: 0; padding: 0; font-size: .9rem; }
        #online li { padding: .15rem 0; overflow-wrap: anywhere; }
        #online li::before { content: "● "; color: #00a32a; }
        #messages { list-style: none; margin: 0; padding: 0; }
        #messages li { padding: .35rem .6rem; margin: .3rem 0; background: #fff; border-radius: .4rem;
                       overflow-wrap: anywhere; white-space: pre-wrap; box-shadow: 0 1px 1px rgba(0,0,0,.05); }
        #messages li.system { background: transparent; color: #646970; font-size: .85rem; box-shadow: none; }
        #messages .nick { font-weight: 600; margin-right: .4rem; }
        #messages .time { float: right; color: #8c8f94; font-size: .75rem; margin-left: .5rem; }
        #form { display: flex; gap: .5rem; padding: .75rem 1rem; border-top: 1px solid #dcdcde; background: #fff; }
        input, button { font: inherit; padding: .45rem .6rem; border: 1px solid #8c8f94; border-radius: .4rem; }
        #nickname { width: 8rem; }
        #message { flex: 1; min-width: 0; }
        button { background: #2271b1; color: #fff; border-color: #2271b1; cursor: pointer; }
        button:disabled { opacity: .5; cursor: default; }
        @media (max-width: 32rem) {
          #form { flex-wrap: wrap; }
          #nickname { width: 100%; }
          #body { flex-direction: column; }
          aside { width: auto; border-left: 0; border-top: 1px solid #dcdcde; max-height: 5.5rem; }
          #online { display: flex; flex-wrap: wrap; gap: 0 .8rem; }
        }

        """

    static let script = """
        "use strict";
        (() => {
          const $ = (id) => document.getElementById(id);
          const list = $("messages"), status = $("status"), roomList = $("rooms"), online = $("online");
          const nickname = $("nickname"), input = $("message"), send = $("send"), roomInput = $("room");
          const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
          const maxShown = 5000;  // per room, in memory and on screen
          // room -> { messages: [{id, ts, nick, user?, text} | {system}], ids: Set, lastId, unread,
          //           members: Map(id -> {nick, user?}) }
          const rooms = new Map();
          let current = null, socket = null, attempt = 0;
          // The user a token proved on this socket (null: anonymous), and whether the socket may chat yet.
          let identity = null, ready = false;

          // Where the page gets a connection token. An app replaces this with a call to its own backend, which
          // signs one for the signed-in user (README, "Securing Switchboard"); this demo reads it from the URL's
          // fragment (#token=…), which browsers never send to a server. null: connect anonymously.
          async function fetchToken() {
            return new URLSearchParams(location.hash.slice(1)).get("token");
          }

          nickname.value = localStorage.getItem("switchboard.nickname") ||
            "guest" + Math.floor(Math.random() * 1000);
          let sentNick = null;
          function sendNick() {
            const nick = nickname.value.trim() || "guest";
            if (identity || nick === sentNick || !socket || socket.readyState !== WebSocket.OPEN) return;
            localStorage.setItem("switchboard.nickname", nick);
            sendFrame({ type: "nick", nick });
            sentNick = nick;
          }
          nickname.addEventListener("change", sendNick);

          function sendFrame(frame) {
            if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
          }

          function room(name) {
            if (!rooms.has(name)) {
              rooms.set(name, { messages: [], ids: new Set(), lastId: null, unread: false, members: new Map() });
            }
            return rooms.get(name);
          }

          // Messages are text, always: textContent never parses HTML.
          function render(entry) {
            const item = document.createElement("li");
            if (entry.system) {
              item.className = "system";
              item.textContent = entry.system;
              return item;
            }
            const time = document.createElement("span");
            time.className = "time";
            time.textContent = new Date(entry.ts).toLocaleTimeString();
            const nick = document.createElement("span");
            nick.className = "nick";
            // A token's user id is shown beside its name: names may look alike, ids are unique.
            nick.textContent = entry.user && entry.user !== entry.nick ? entry.nick + " @" + entry.user : entry.nick;
            item.append(time, nick, document.createTextNode(entry.text));
            return item;
          }

          function showRoom(name) {
            current = name;
            room(name).unread = false;
            list.replaceChildren(...room(name).messages.map(render));
            list.lastElementChild?.scrollIntoView({ block: "end" });
            renderRooms();
            renderOnline();
          }

          function renderOnline() {
            // One entry per user (a user with three sockets is one person, "×3"); anonymous sockets each their own.
            const people = new Map();
            for (const [id, member] of current ? room(current).members : []) {
              const key = member.user ? "user:" + member.user : "socket:" + id;
              const person = people.get(key) || { label: member.user && member.user !== member.nick ? member.nick + " @" + member.user : member.nick, count: 0 };
              person.count += 1;
              people.set(key, person);
            }
            const labels = [...people.values()].map((p) => p.count > 1 ? p.label + " ×" + p.count : p.label).sort();
            online.replaceChildren(...labels.map((label) => {
              const item = document.createElement("li");
              item.textContent = label;
              return item;
            }));
          }

          function renderRooms() {
            roomList.replaceChildren(...[...rooms.keys()].map((name) => {
              const item = document.createElement("li");
              item.textContent = "#" + name;
              item.dataset.room = name;
              if (name === current) item.className = "current";
              else if (rooms.get(name).unread) item.className = "unread";
              item.addEventListener("click", () => showRoom(name));
              return item;
            }));
          }

          function add(name, entry) {
            const state = room(name);
            if (entry.id) {
              if (state.ids.has(entry.id)) return;  // already shown: catch-up never duplicates
              state.ids.add(entry.id);
              state.lastId = entry.id;
            }
            state.messages.push(entry);
            if (state.messages.length > maxShown) state.messages.shift();
            if (name !== current) { state.unread = true; renderRooms(); return; }
            const scroller = list.parentElement;
            const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 8;
            const item = render(entry);
            list.appendChild(item);
            while (list.children.length > maxShown) list.removeChild(list.firstChild);
            if (atBottom) item.scrollIntoView({ block: "end" });
          }

          // Rooms whose join (or re-sync) is unanswered, and the delay before retrying one the server could not
          // serve (`unavailable`: its broker or history store is down or slow).
          const joining = new Set();
          const retryDelay = new Map();

          function join(name) {
            room(name);
            joining.add(name);
            sendFrame({ type: "join", room: name, since: room(name).lastId || undefined });
          }

          function retryJoin(name) {
            const delay = retryDelay.get(name) || 500;
            retryDelay.set(name, Math.min(delay * 2, 10000));
            setTimeout(() => { if (socket && joining.has(name)) join(name); }, delay * (0.5 + Math.random() / 2));
          }

          function setStatus(state, label) {
            status.className = "status " + state;
            status.textContent = label;
            send.disabled = state !== "open";
          }

          function received(frame) {
            switch (frame.type) {
              case "joined": {
                joining.delete(frame.room);
                retryDelay.delete(frame.room);
                const state = room(frame.room);
                if (frame.gap && state.lastId) {
                  // Too long away (or the server's history restarted): say so, then show the current history.
                  add(frame.room, { system: "some messages may have been missed" });
                }
                for (const message of frame.messages) add(frame.room, message);
                state.members = new Map(frame.members.map((member) => [member.id, member]));
                renderRooms();
                if (frame.room === current) renderOnline();
                break;
              }
              case "presence": {
                const members = room(frame.room).members;
                if (frame.event === "join") members.set(frame.member.id, frame.member);
                else members.delete(frame.member.id);
                if (frame.room === current) renderOnline();
                break;
              }
              // The rest of a long history, after `joined`, a frame at a time.
              case "history": for (const message of frame.messages) add(frame.room, message); break;
              case "message": add(frame.room, frame); break;
              // Messages may have been lost on the server's side: join again from the last one shown, which
              // sends exactly what is missing, then the live messages held meanwhile.
              case "gap": join(frame.room); break;
              case "welcome":
                fetchToken().then((token) => {
                  if (token && frame.auth !== "off") sendFrame({ type: "auth", token });
                  else if (frame.auth === "required") setStatus("closed", "this server needs a sign-in token");
                  else becomeReady();
                });
                break;
              case "authenticated":
                identity = frame.you.user;
                nickname.value = frame.you.nick;
                nickname.disabled = true;  // the token's name
                becomeReady();
                break;
              // The token expires soon: hand the server a fresh one, on the same socket.
              case "refresh":
                fetchToken().then((token) => { if (token) sendFrame({ type: "auth", token }); });
                break;
              case "error":
                if (frame.code === "unavailable" && joining.has(frame.room)) {
                  add(frame.room, { system: "the server is busy; joining again shortly" });
                  retryJoin(frame.room);
                } else {
                  if (frame.room) joining.delete(frame.room);
                  add(frame.room && rooms.has(frame.room) ? frame.room : current, { system: "error: " + frame.message });
                }
                break;
            }
          }

          // The socket is welcomed (and authenticated, with a token): set the nickname, rejoin every room from the
          // last message shown (the server sends exactly what was missed), and let the user type.
          function becomeReady() {
            if (ready) return;
            ready = true;
            setStatus("open", "connected");
            sentNick = null;
            sendNick();
            for (const name of rooms.keys()) join(name);
          }

          function connect() {
            setStatus("connecting", attempt ? "reconnecting…" : "connecting…");
            socket = new WebSocket(url, "switchboard.chat.v1");
            socket.onopen = () => { attempt = 0; };  // then welcome, and auth if there is a token
            socket.onmessage = (event) => {
              try { received(JSON.parse(event.data)); } catch (error) { console.error(error); }
            };
            socket.onclose = (event) => {
              socket = null;
              ready = false;
              if (event.code >= 4001 && event.code <= 4003) add(current || "lobby", { system: "signed out: " + event.reason });
              joining.clear();  // every room is joined again on reconnecting
              retryDelay.clear();
              for (const state of rooms.values()) state.members.clear();
              renderOnline();
              // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 10 s.
              const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
              attempt += 1;
              setStatus("closed", "offline, retrying in " + Math.ceil(delay / 1000) + " s");
              setTimeout(connect, delay);
            };
          }

          $("form").addEventListener("submit", (event) => {
            event.preventDefault();
            const text = input.value.trim();
            if (!text || !current || !socket || socket.readyState !== WebSocket.OPEN) return;
            sendNick();
            sendFrame({ type: "say", room: current, text });
            input.value = "";
            input.focus();
          });

          $("join").addEventListener("submit", (event) => {
            event.preventDefault();
            const name = roomInput.value.trim();
            if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return;
            roomInput.value = "";
            if (!rooms.has(name)) join(name);
            showRoom(name);
          });

          room("lobby");
          showRoom("lobby");
          connect();
        })();

        """
}
