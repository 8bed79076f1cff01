// Admin (administrators only): users, virtual hosts and permissions.

import { h, clear, fmtNum, enc } from './dom.js';
import * as api from './api.js';
import { Table, actionForm, confirmAction, section } from './widgets.js';

const TAG_HELP = 'Comma-separated: administrator, monitoring, management, policymaker (or none).';

export function adminView() {
  let users = [];
  let vhosts = [];
  const me = api.current();

  const userTable = new Table([
    { key: 'name', label: 'Name', cell: (u) => h('b', null, u.name) },
    { key: 'tags', label: 'Tags', value: (u) => (u.tags || []).join(', '), cell: (u) => ((u.tags || []).length ? u.tags.map((t) => h('span', { class: 'badge tag' }, t)) : h('span', { class: 'muted' }, 'none')) },
    { key: 'password', label: 'Password', value: (u) => (u.password_hash ? 'set' : 'none') },
    { key: 'x', label: '', value: null, cell: (u) => confirmAction({
      id: 'delete-user-' + u.name, label: 'Delete', small: true,
      question: u.name === me.user ? 'Delete yourself? You will be logged out.' : `Delete user ${u.name}?`,
      fn: async () => {
        await api.del(`/api/users/${enc(u.name)}`);
        if (u.name === me.user) { api.logout('You deleted your own user.'); return 'Deleted.'; }
        await refresh();
        return 'Deleted.';
      },
    }) },
  ], { cls: 'users', empty: 'No users.', rowData: (u) => ({ user: u.name }) });

  const addUser = actionForm({
    id: 'add-user',
    submit: 'Add user',
    fields: [
      { name: 'name', label: 'Username', required: true },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password' },
      { name: 'tags', label: 'Tags', list: 'tag-list', help: TAG_HELP },
    ],
    async onSubmit(v) {
      const name = v.name.trim();
      if (!name) throw new Error('Give the user a name.');
      if (users.some((u) => u.name === name)) throw new Error(`User ${name} exists already; change it below.`);
      await api.put(`/api/users/${enc(name)}`, { password: v.password, tags: v.tags });
      await refresh();
      return `User ${name} added.${v.password ? '' : ' It has no password, so it cannot log in until you set one.'} Give it permissions below.`;
    },
  });

  const editUser = actionForm({
    id: 'edit-user',
    submit: 'Update user',
    fields: [
      { name: 'name', label: 'User', type: 'select', options: [] },
      { name: 'tags', label: 'Tags', list: 'tag-list', help: TAG_HELP + ' Leave as shown to keep them.' },
      { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', help: 'Empty keeps the current password.' },
    ],
    async onSubmit(v) {
      const u = users.find((x) => x.name === v.name);
      if (!u) throw new Error('Choose a user.');
      const body = { tags: v.tags };
      if (v.password) body.password = v.password;
      else if (u.password_hash) { body.password_hash = u.password_hash; body.hashing_algorithm = u.hashing_algorithm; }
      await api.put(`/api/users/${enc(u.name)}`, body);
      editUser.form.elements.password.value = '';
      await refresh();
      if (u.name === me.user) {
        if (v.password) {
          api.logout('Your password changed: log in again with the new one.');
          return 'Updated.';
        }
        await api.refreshWho();
      }
      return `User ${u.name} updated.`;
    },
  });
  const editSel = editUser.form.elements.name;
  editSel.addEventListener('change', () => {
    const u = users.find((x) => x.name === editSel.value);
    editUser.form.elements.tags.value = u ? (u.tags || []).join(', ') : '';
  });

  const vhostTable = new Table([
    { key: 'name', label: 'Name', cell: (v) => h('b', null, v.name) },
    { key: 'description', label: 'Description' },
    { key: 'messages_ready', label: 'Ready', num: true, cell: (v) => fmtNum(v.messages_ready) },
    { key: 'messages_unacknowledged', label: 'Unacked', num: true, cell: (v) => fmtNum(v.messages_unacknowledged) },
    { key: 'x', label: '', value: null, cell: (v) => confirmAction({
      id: 'delete-vhost-' + v.name, label: 'Delete', small: true, question: `Delete vhost ${v.name} with all its queues and messages?`,
      fn: async () => { await api.del(`/api/vhosts/${enc(v.name)}`); await refresh(); return 'Deleted.'; },
    }) },
  ], { cls: 'vhosts', empty: 'No vhosts.' });

  const addVhost = actionForm({
    id: 'add-vhost',
    submit: 'Add vhost',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'description', label: 'Description' },
    ],
    async onSubmit(v) {
      const name = v.name.trim();
      if (!name) throw new Error('Give the vhost a name.');
      await api.put(`/api/vhosts/${enc(name)}`, { description: v.description });
      await refresh();
      return `Vhost ${name} added; you have full permissions on it, other users need theirs.`;
    },
  });

  const permTable = new Table([
    { key: 'user', label: 'User' },
    { key: 'vhost', label: 'Vhost' },
    { key: 'configure', label: 'Configure', cell: (p) => h('code', null, p.configure) },
    { key: 'write', label: 'Write', cell: (p) => h('code', null, p.write) },
    { key: 'read', label: 'Read', cell: (p) => h('code', null, p.read) },
    { key: 'x', label: '', value: null, cell: (p) => confirmAction({
      id: `clear-perm-${p.vhost}-${p.user}`, label: 'Clear', small: true, question: `Take ${p.user}'s permissions on ${p.vhost}?`,
      fn: async () => { await api.del(`/api/permissions/${enc(p.vhost)}/${enc(p.user)}`); await refresh(); return 'Cleared.'; },
    }) },
  ], { cls: 'permissions', empty: 'No permissions.' });

  const setPerm = actionForm({
    id: 'set-permission',
    submit: 'Set permission',
    fields: [
      { name: 'user', label: 'User', type: 'select', options: [] },
      { name: 'vhost', label: 'Vhost', type: 'select', options: [] },
      { name: 'configure', label: 'Configure regexp', value: '.*' },
      { name: 'write', label: 'Write regexp', value: '.*' },
      { name: 'read', label: 'Read regexp', value: '.*' },
    ],
    async onSubmit(v) {
      await api.put(`/api/permissions/${enc(v.vhost)}/${enc(v.user)}`, { configure: v.configure, write: v.write, read: v.read });
      await refresh();
      return `${v.user} may now use ${v.vhost} as given.`;
    },
  });

  const el = h('div', { class: 'view admin' },
    h('h1', null, 'Admin'),
    h('datalist', { id: 'tag-list' }, ['administrator', 'monitoring', 'management', 'policymaker', 'management, monitoring'].map((t) => h('option', { value: t }))),
    section('Users', userTable.el, h('div', { class: 'grid2' },
      h('div', null, h('h3', null, 'Add a user'), addUser.el),
      h('div', null, h('h3', null, 'Change tags or password'), editUser.el))),
    h('div', { class: 'grid2' },
      section('Virtual hosts', vhostTable.el, h('h3', null, 'Add a vhost'), addVhost.el),
      section('Permissions', permTable.el, h('h3', null, 'Set a permission'), setPerm.el)));

  const fill = (sel, names) => {
    const prev = sel.value;
    clear(sel, names.map((n) => h('option', { value: n }, n)));
    if (names.includes(prev)) sel.value = prev;
  };

  async function refresh() {
    const [us, vs, ps] = await Promise.all([api.get('/api/users'), api.get('/api/vhosts'), api.get('/api/permissions')]);
    users = us;
    vhosts = vs;
    userTable.setRows(us);
    vhostTable.setRows(vs);
    permTable.setRows(ps);
    const hadUser = editSel.value;
    fill(editSel, us.map((u) => u.name));
    if (editSel.value !== hadUser) editSel.dispatchEvent(new Event('change'));
    fill(setPerm.form.elements.user, us.map((u) => u.name));
    fill(setPerm.form.elements.vhost, vs.map((v) => v.name));
  }

  return { el, refresh };
}
