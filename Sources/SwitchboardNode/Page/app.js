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
  // signs one for the signed-in user (docs/SECURITY.md); this demo reads it from the URL's
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
