import HTTPTypes
import Switchboard

/// The chat page: plain HTML, CSS and JavaScript compiled into the executable (no CDN, no build step).
///
/// It speaks the seed's protocol at `/chat` (raw text frames; it sends "nickname: text"), reconnects with
/// backoff, and renders every message with `textContent`: a message is never parsed as HTML (the seed inserts raw
/// HTML, an XSS hole).
enum ChatPage {
    static func response(_ text: String, type: String) -> Response {
        Response(headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(string: text))
    }

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
        <main>
          <ul id="messages" aria-live="polite"></ul>
        </main>
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
        main { flex: 1; overflow-y: auto; padding: .5rem 1rem; }
        #messages { list-style: none; margin: 0; padding: 0; }
        #messages li { padding: .35rem .6rem; margin: .3rem 0; background: #fff; border-radius: .4rem;
                       overflow-wrap: anywhere; white-space: pre-wrap; box-shadow: 0 1px 1px rgba(0,0,0,.05); }
        #messages li.system { background: transparent; color: #646970; font-size: .85rem; box-shadow: none; }
        form { display: flex; gap: .5rem; padding: .75rem 1rem; border-top: 1px solid #dcdcde; background: #fff; }
        input, button { font: inherit; padding: .5rem .6rem; border: 1px solid #8c8f94; border-radius: .4rem; }
        #nickname { width: 8rem; }
        #message { flex: 1; min-width: 0; }
        button { background: #2271b1; color: #fff; border-color: #2271b1; cursor: pointer; }
        button:disabled { opacity: .5; cursor: default; }
        @media (max-width: 32rem) {
          form { flex-wrap: wrap; }
          #nickname { width: 100%; }
        }

        """

    static let script = """
        "use strict";
        (() => {
          const list = document.getElementById("messages");
          const status = document.getElementById("status");
          const form = document.getElementById("form");
          const nickname = document.getElementById("nickname");
          const input = document.getElementById("message");
          const send = document.getElementById("send");
          const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat";
          const maxShown = 500;
          let socket = null;
          let attempt = 0;

          nickname.value = localStorage.getItem("switchboard.nickname") ||
            "guest" + Math.floor(Math.random() * 1000);
          nickname.addEventListener("change", () => localStorage.setItem("switchboard.nickname", nickname.value));

          // Messages are text, always: textContent never parses HTML.
          function show(text, kind) {
            const item = document.createElement("li");
            item.textContent = text;
            if (kind) item.className = kind;
            const atBottom = list.parentElement.scrollTop + list.parentElement.clientHeight >=
              list.parentElement.scrollHeight - 8;
            list.appendChild(item);
            while (list.children.length > maxShown) list.removeChild(list.firstChild);
            if (atBottom) item.scrollIntoView({ block: "end" });
          }

          function setStatus(state, label) {
            status.className = "status " + state;
            status.textContent = label;
            send.disabled = state !== "open";
          }

          function connect() {
            setStatus("connecting", attempt ? "reconnecting…" : "connecting…");
            socket = new WebSocket(url);
            socket.onopen = () => {
              if (attempt) show("reconnected", "system");
              attempt = 0;
              setStatus("open", "connected");
            };
            socket.onmessage = (event) => show(String(event.data));
            socket.onclose = () => {
              socket = null;
              // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to 10 s.
              const delay = Math.min(10000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
              attempt += 1;
              setStatus("closed", "offline, retrying in " + Math.ceil(delay / 1000) + " s");
              setTimeout(connect, delay);
            };
          }

          form.addEventListener("submit", (event) => {
            event.preventDefault();
            const text = input.value.trim();
            if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
            socket.send((nickname.value.trim() || "guest") + ": " + text);
            input.value = "";
            input.focus();
          });

          connect();
        })();

        """
}
