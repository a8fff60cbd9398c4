/**
 * Parley's web chat app: plain DOM on @parley/client. The SDK owns the connection, sync, the
 * outbox and the local state; this file only renders that state and turns clicks into SDK calls.
 */
import {
  type ChatMember,
  type ConnectionState,
  type LocalMessage,
  ParleyClient,
  ParleyHttpError,
  type PendingMessage,
  webStorageOutbox,
} from '@parley/client';
import './style.css';

const TOKEN_KEY = 'parley.token';
const REACTIONS = ['👍', '❤️', '😂'];
const TYPING_EVERY_MS = 2000;

type Child = Node | string | null | undefined | false;
type Props = Record<string, string | number | boolean | undefined | ((ev: Event) => void)>;

/** A DOM element: `on*` props are listeners, the rest attributes (true: present, false: absent). */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(key, '');
    else if (value !== false && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const client = new ParleyClient({
  urls: [location.origin],
  token: localStorage.getItem(TOKEN_KEY),
  storage: webStorageOutbox(localStorage),
  backoff: { baseMs: 250, maxMs: 4000 },
});

const ui = {
  chatId: null as string | null,
  /** Per chat: whether older history remains, and whether it is loading. */
  more: new Map<string, boolean>(),
  loadingOlder: false,
  replyTo: null as number | null,
  editing: null as number | null,
  lastTypingSent: 0,
  everOpen: false,
};

// ---- rendering ------------------------------------------------------------------------

let scheduled = false;
function render(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    renderBanner();
    renderChatList();
    renderChat();
  });
}

function renderBanner(): void {
  const s = client.state;
  const banner = $('banner');
  const show = ui.everOpen && (s === 'reconnecting' || s === 'connecting');
  banner.hidden = !show;
  banner.textContent = show ? 'Reconnecting… your messages will be sent when the connection is back.' : '';
  document.body.dataset.connection = s;
}

function me(): string | undefined {
  return client.user?.id;
}

function memberName(chatId: string, userId: string): string {
  if (userId === me()) return 'You';
  const m = client.chat(chatId)?.members.find((x) => x.userId === userId);
  return m?.displayName ?? m?.username ?? userId.slice(0, 8);
}

function chatTitle(chatId: string): string {
  const chat = client.chat(chatId);
  if (chat?.info?.title) return chat.info.title;
  const others = chat?.members.filter((m) => m.userId !== me()) ?? [];
  return others.length ? others.map((m) => m.displayName).join(', ') : 'Chat';
}

function lastMessage(chatId: string): LocalMessage | undefined {
  const list = client.messages(chatId);
  return list[list.length - 1];
}

function dot(userId: string): HTMLElement {
  const online = client.presence(userId)?.status === 'online';
  return h('span', {
    class: `dot ${online ? 'online' : 'offline'}`,
    'data-user': userId,
    title: online ? 'online' : 'offline',
  });
}

function renderChatList(): void {
  const list = $('chat-list');
  const chats = client
    .chats()
    .filter((c) => c.info || c.members.length)
    .sort((a, b) => {
      const at = lastMessage(a.chatId)?.createdAt ?? a.info?.createdAt ?? '';
      const bt = lastMessage(b.chatId)?.createdAt ?? b.info?.createdAt ?? '';
      return bt.localeCompare(at);
    });
  list.replaceChildren(
    ...chats.map((c) => {
      const last = lastMessage(c.chatId);
      const others = c.members.filter((m) => m.userId !== me());
      return h(
        'li',
        {
          class: `chat-item${c.chatId === ui.chatId ? ' active' : ''}`,
          'data-chat': c.chatId,
          onclick: () => void openChat(c.chatId),
        },
        h(
          'div',
          { class: 'chat-line' },
          ...others.slice(0, 3).map((m) => dot(m.userId)),
          h('b', {}, chatTitle(c.chatId)),
        ),
        h(
          'div',
          { class: 'chat-last' },
          last
            ? `${memberName(c.chatId, last.senderId)}: ${last.deletedAt ? 'message deleted' : last.body}`
            : 'no messages yet',
        ),
        c.unreadCount > 0 ? h('span', { class: 'unread' }, String(c.unreadCount)) : null,
      );
    }),
  );
}

function tick(state: LocalMessage['state'] | PendingMessage['state']): HTMLElement {
  const text = state === 'sending' ? '🕓' : state === 'accepted' ? '✓' : '✓✓';
  return h('span', { class: `tick ${state}`, 'data-state': state, title: state }, text);
}

function messageView(chatId: string, m: LocalMessage, seenBy: string[]): HTMLElement {
  const mine = m.senderId === me();
  const replied = m.replyTo ? client.messages(chatId).find((x) => x.seq === m.replyTo) : undefined;
  const deleted = m.deletedAt !== null;
  return h(
    'li',
    { class: `msg${mine ? ' mine' : ''}${deleted ? ' deleted' : ''}`, 'data-seq': m.seq },
    h('div', { class: 'sender' }, memberName(chatId, m.senderId)),
    m.replyTo
      ? h(
          'div',
          { class: 'reply-quote' },
          `↪ ${replied ? `${memberName(chatId, replied.senderId)}: ${replied.deletedAt ? 'message deleted' : replied.body}` : `#${m.replyTo}`}`,
        )
      : null,
    h('div', { class: 'body' }, deleted ? 'message deleted' : m.body),
    h(
      'div',
      { class: 'meta' },
      m.editedAt && !deleted ? h('span', { class: 'edited' }, '(edited)') : null,
      h('time', {}, new Date(m.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
      mine ? tick(m.state) : null,
    ),
    m.reactions.length
      ? h(
          'div',
          { class: 'reactions' },
          ...m.reactions.map((r) => {
            const mineToo = r.userIds.includes(me() ?? '');
            return h(
              'button',
              {
                class: `reaction${mineToo ? ' on' : ''}`,
                'data-emoji': r.emoji,
                onclick: () => void client.react(chatId, m.seq, r.emoji, !mineToo),
              },
              `${r.emoji} ${r.count}`,
            );
          }),
        )
      : null,
    deleted
      ? null
      : h(
          'div',
          { class: 'actions' },
          h('button', { class: 'act-reply', onclick: () => startReply(m.seq) }, 'Reply'),
          ...REACTIONS.map((e) =>
            h('button', { class: 'act-react', 'data-emoji': e, onclick: () => void client.react(chatId, m.seq, e) }, e),
          ),
          mine ? h('button', { class: 'act-edit', onclick: () => startEdit(m) }, 'Edit') : null,
          mine
            ? h('button', { class: 'act-delete', onclick: () => void client.delete(chatId, m.seq) }, 'Delete')
            : null,
        ),
    seenBy.length ? h('div', { class: 'seen' }, `Seen by ${seenBy.join(', ')}`) : null,
  );
}

function renderChat(): void {
  const chatId = ui.chatId;
  document.body.classList.toggle('in-chat', chatId !== null);
  const pane = $('chat-pane');
  pane.hidden = chatId === null;
  if (!chatId) return;
  const chat = client.chat(chatId);
  $('chat-title').textContent = chatTitle(chatId);
  $('members').replaceChildren(
    ...(chat?.members ?? []).map((m: ChatMember) =>
      h('span', { class: 'member' }, m.userId === me() ? null : dot(m.userId), m.displayName),
    ),
  );

  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const messages = client.messages(chatId);
  // "Seen by" under the newest message of mine each other member has read.
  const seen = new Map<number, string[]>();
  for (const m of chat?.members ?? []) {
    if (m.userId === me()) continue;
    const upTo = chat?.reads.get(m.userId) ?? 0;
    const last = [...messages].reverse().find((x) => x.senderId === me() && x.seq <= upTo);
    if (last) seen.set(last.seq, [...(seen.get(last.seq) ?? []), m.displayName]);
  }
  box.replaceChildren(
    ...(ui.more.get(chatId) ? [h('li', { class: 'older' }, 'Scroll up for older messages')] : []),
    ...messages.map((m) => messageView(chatId, m, seen.get(m.seq) ?? [])),
    ...client
      .pending(chatId)
      .map((p) =>
        h(
          'li',
          { class: 'msg mine pending', 'data-client-msg-id': p.clientMsgId },
          h('div', { class: 'body' }, p.body),
          h('div', { class: 'meta' }, tick(p.state)),
        ),
      ),
  );
  if (atBottom) box.scrollTop = box.scrollHeight;

  const typers = client.typingUsers(chatId).filter((u) => u !== me());
  $('typing').textContent = typers.length
    ? `${typers.map((u) => memberName(chatId, u)).join(', ')} ${typers.length > 1 ? 'are' : 'is'} typing…`
    : '';

  const reply = ui.replyTo ? messages.find((m) => m.seq === ui.replyTo) : undefined;
  $('composer-context').replaceChildren(
    ui.editing
      ? h('span', {}, 'Editing your message ', h('button', { id: 'cancel-context', onclick: cancelContext }, 'Cancel'))
      : reply
        ? h(
            'span',
            {},
            `Replying to ${memberName(chatId, reply.senderId)}: ${reply.body.slice(0, 60)} `,
            h('button', { id: 'cancel-context', onclick: cancelContext }, 'Cancel'),
          )
        : '',
  );
}

// ---- actions --------------------------------------------------------------------------

function showError(err: unknown): void {
  const text = err instanceof ParleyHttpError ? (err.body?.message ?? err.message) : String(err);
  $('error').textContent = text;
}

function startReply(seq: number): void {
  ui.editing = null;
  ui.replyTo = seq;
  $<HTMLTextAreaElement>('composer').focus();
  render();
}

function startEdit(m: LocalMessage): void {
  ui.replyTo = null;
  ui.editing = m.seq;
  const box = $<HTMLTextAreaElement>('composer');
  box.value = m.body;
  box.focus();
  render();
}

function cancelContext(): void {
  if (ui.editing) $<HTMLTextAreaElement>('composer').value = '';
  ui.editing = null;
  ui.replyTo = null;
  render();
}

/** Marks the open chat read up to its newest message, when there is something new to read. */
function markOpenChatRead(): void {
  const chatId = ui.chatId;
  if (!chatId || document.visibilityState !== 'visible') return;
  const chat = client.chat(chatId);
  const last = lastMessage(chatId);
  const mine = me();
  if (!chat || !last) return;
  // Nothing new to read. Who "mine" is comes with the connection's `ready`: a chat opened before
  // it (a reload under a slow api) is marked read all the same, by HTTP if need be.
  if (mine && (chat.reads.get(mine) ?? 0) >= last.seq && chat.unreadCount === 0) return;
  void client.markRead(chatId, last.seq).then(render, () => undefined);
}

async function loadOlder(chatId: string): Promise<void> {
  if (ui.loadingOlder || ui.more.get(chatId) === false) return;
  ui.loadingOlder = true;
  const box = $('messages');
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    const { hasMore } = await client.loadOlder(chatId, 30);
    ui.more.set(chatId, hasMore);
  } catch (err) {
    showError(err);
  } finally {
    ui.loadingOlder = false;
  }
  if (ui.chatId !== chatId) return;
  renderChat();
  box.scrollTop = box.scrollHeight - fromBottom; // the same message stays in view
}

async function openChat(chatId: string): Promise<void> {
  ui.chatId = chatId;
  ui.replyTo = ui.editing = null;
  location.hash = chatId;
  render();
  try {
    await client.loadMembers(chatId);
    if (!ui.more.has(chatId) || client.messages(chatId).length < 20) await loadOlder(chatId);
    const box = $('messages');
    box.scrollTop = box.scrollHeight;
  } catch (err) {
    showError(err);
  }
  render();
  markOpenChatRead();
}

function submitComposer(): void {
  const chatId = ui.chatId;
  const box = $<HTMLTextAreaElement>('composer');
  const text = box.value.trim();
  if (!chatId || !text) return;
  if (ui.editing) client.edit(chatId, ui.editing, text);
  else client.send(chatId, text, ui.replyTo ? { replyTo: ui.replyTo } : {});
  box.value = '';
  ui.replyTo = ui.editing = null;
  ui.lastTypingSent = 0; // a message ends one's typing: the next key starts it again
  $('messages').scrollTop = $('messages').scrollHeight;
  render();
  requestAnimationFrame(() => ($('messages').scrollTop = $('messages').scrollHeight));
}

async function refreshChats(): Promise<void> {
  try {
    const items = await client.loadChats();
    await Promise.all(items.map((c) => client.loadMembers(c.id)));
  } catch (err) {
    showError(err);
  }
  render();
}

async function createChat(ev: Event): Promise<void> {
  ev.preventDefault();
  const title = $<HTMLInputElement>('new-title').value.trim();
  const names = $<HTMLInputElement>('new-members')
    .value.split(/[\s,]+/)
    .filter(Boolean);
  try {
    const found = await Promise.all(names.map((n) => client.http.findUser(n)));
    const { chat } = await client.http.createChat({
      ...(title ? { title } : {}),
      memberIds: found.map((f) => f.user.id).filter((id) => id !== me()),
    });
    $<HTMLInputElement>('new-title').value = '';
    $<HTMLInputElement>('new-members').value = '';
    $('error').textContent = '';
    await refreshChats();
    await openChat(chat.id);
  } catch (err) {
    showError(err instanceof ParleyHttpError && err.status === 404 ? 'No user with that username' : err);
  }
}

async function addMember(ev: Event): Promise<void> {
  ev.preventDefault();
  const input = $<HTMLInputElement>('add-member');
  const chatId = ui.chatId;
  if (!chatId || !input.value.trim()) return;
  try {
    await client.addMemberByUsername(chatId, input.value.trim());
    input.value = '';
    $('error').textContent = '';
    await client.loadMembers(chatId);
  } catch (err) {
    showError(err instanceof ParleyHttpError && err.status === 404 ? 'No user with that username' : err);
  }
  render();
}

async function startSession(): Promise<void> {
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  client.connect();
  await refreshChats();
  const wanted = location.hash.slice(1);
  if (wanted && client.chat(wanted)) await openChat(wanted);
}

async function logInOrRegister(ev: Event): Promise<void> {
  ev.preventDefault();
  const submitter = (ev as SubmitEvent).submitter as HTMLButtonElement | null;
  const username = $<HTMLInputElement>('username').value.trim();
  const password = $<HTMLInputElement>('password').value;
  try {
    if (submitter?.value === 'register') await client.register(username, password);
    await client.login(username, password);
    localStorage.setItem(TOKEN_KEY, client.token ?? '');
    $('error').textContent = '';
    await startSession();
  } catch (err) {
    showError(err);
  }
}

function showLogin(): void {
  localStorage.removeItem(TOKEN_KEY);
  ui.chatId = null;
  ui.everOpen = false;
  $('main-view').hidden = true;
  $('login-view').hidden = false;
  render();
}

// ---- wiring ---------------------------------------------------------------------------

client.on('state', (s: ConnectionState) => {
  if (s === 'open') ui.everOpen = true;
  if (s === 'logged-out') showLogin();
  render();
});
client.on('ready', () => {
  // A chat one was added to while away, and the new state of every chat.
  void refreshChats().then(markOpenChatRead);
});
client.on('message', (m) => {
  if (!client.chat(m.chatId)?.info) void refreshChats();
  if (m.chatId === ui.chatId) queueMicrotask(markOpenChatRead);
  render();
});
for (const event of ['updated', 'ack', 'failed', 'persisted', 'read', 'presence', 'synced'] as const) {
  client.on(event, render);
}
client.on('typing', () => {
  render();
  setTimeout(render, 6500); // when the indicator runs out
});
client.on('failed', ({ error }) => showError(`${error.code}: ${error.message}`));
document.addEventListener('visibilitychange', markOpenChatRead);

$('login-form').addEventListener('submit', (ev) => void logInOrRegister(ev));
$('new-chat').addEventListener('submit', (ev) => void createChat(ev));
$('add-member-form').addEventListener('submit', (ev) => void addMember(ev));
$('logout').addEventListener('click', () => void client.logout().catch(showError).finally(showLogin));
$('back').addEventListener('click', () => {
  ui.chatId = null;
  history.replaceState(null, '', location.pathname);
  render();
});
$('messages').addEventListener('scroll', () => {
  if (ui.chatId && $('messages').scrollTop < 60) void loadOlder(ui.chatId);
});
const composer = $<HTMLTextAreaElement>('composer');
composer.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submitComposer();
  } else if (ev.key === 'Escape') cancelContext();
});
composer.addEventListener('input', () => {
  const now = Date.now();
  if (ui.chatId && composer.value && now - ui.lastTypingSent > TYPING_EVERY_MS && !ui.editing) {
    if (client.typing(ui.chatId)) ui.lastTypingSent = now;
  }
});
$('send').addEventListener('click', submitComposer);

if (client.token) void startSession();
else showLogin();
