// Live updates of the status page, from /live (server-sent events). The
// server renders and escapes every fragment; this script only places them.
(function () {
  'use strict';
  var main = document.getElementById('main');
  var url = main && main.getAttribute('data-live');
  var status = document.getElementById('live-status');
  var toggle = document.getElementById('live-toggle');
  if (!url || !window.EventSource) {
    if (url && status) status.textContent = 'Live updates need a newer browser; reload to update.';
    return;
  }
  var pageSize = parseInt(main.getAttribute('data-page-size'), 10) || 100;
  var source = null;

  function say(text) { if (status) status.textContent = text; }

  function tbody() { return document.querySelector('tbody[data-rows]'); }

  function parseRows(html) {
    var t = document.createElement('template');
    t.innerHTML = html;
    return t.content;
  }

  // keepFocus moves the focus from a link inside old to the same link in
  // fresh, so that a keyboard user keeps their place.
  function keepFocus(old, fresh) {
    var a = document.activeElement;
    if (!a || !old.contains(a)) return null;
    var href = a.getAttribute('href');
    return function () {
      var links = fresh.querySelectorAll('a');
      for (var i = 0; i < links.length; i++) {
        if (links[i].getAttribute('href') === href) { links[i].focus(); return; }
      }
      main.focus();
    };
  }

  // Announcements (a polite status) say what is new or changed, at most
  // every few seconds; a running job's progress is not announced.
  var added = 0, changed = 0, announce = null;
  function counted(kind) {
    if (kind === 'new') added++; else changed++;
    if (announce) return;
    announce = setTimeout(function () {
      var parts = [];
      if (added) parts.push(added + (added === 1 ? ' new job' : ' new jobs'));
      if (changed) parts.push(changed + (changed === 1 ? ' change' : ' changes'));
      say('Live: ' + parts.join(', ') + ' at ' + new Date().toISOString().slice(11, 19) + ' UTC.');
      added = changed = 0;
      announce = null;
    }, 3000);
  }

  function stateOf(row) {
    var s = row && row.querySelector('.state');
    return s ? s.textContent : '';
  }

  function findRow(body, key) {
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute('data-key') === key) return rows[i];
    }
    return null;
  }

  // upsert replaces a job's row, or inserts it in order (newest first).
  function upsert(msg) {
    var body = tbody();
    var row = body && parseRows(msg.html).firstElementChild;
    if (!row) return;
    var old = findRow(body, msg.key);
    if (old) {
      var moved = stateOf(old) !== stateOf(row);
      if (moved) row.classList.add('fresh');
      var restore = keepFocus(old, row);
      old.replaceWith(row);
      if (restore) restore();
      if (moved) counted('change');
      return;
    }
    var before = null;
    for (var i = 0; i < body.rows.length; i++) {
      if (Number(body.rows[i].getAttribute('data-t')) < msg.t) { before = body.rows[i]; break; }
    }
    var empty = body.querySelector('tr.empty');
    if (!before && body.rows.length - (empty ? 1 : 0) >= pageSize) return; // older than the page shows
    if (empty) empty.remove();
    row.classList.add('fresh');
    body.insertBefore(row, before);
    while (body.rows.length > pageSize) body.deleteRow(body.rows.length - 1);
    counted('new');
  }

  function remove(msg) {
    var body = tbody();
    var old = body && findRow(body, msg.key);
    if (!old) return;
    if (old.contains(document.activeElement)) main.focus();
    old.remove();
    counted('change');
  }

  function replaceRows(msg) {
    var body = tbody();
    if (!body) return;
    var fresh = document.createElement('tbody');
    fresh.setAttribute('data-rows', body.getAttribute('data-rows'));
    fresh.appendChild(parseRows(msg.html));
    if (fresh.innerHTML === body.innerHTML) return;
    var restore = keepFocus(body, fresh);
    body.replaceWith(fresh);
    if (restore) restore();
    counted('change');
  }

  // refresh reloads the content of the page (a job's detail) in place.
  function refresh() {
    fetch(window.location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('main');
        if (!fresh || fresh.innerHTML === main.innerHTML) return;
        var restore = keepFocus(main, fresh);
        main.innerHTML = fresh.innerHTML;
        if (restore) restore();
        counted('change');
      })
      .catch(function () { say('Live: this job could not be refreshed; reload the page.'); });
  }

  function on(name, handle) {
    source.addEventListener(name, function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      handle(msg);
    });
  }

  function connect() {
    source = new EventSource(url);
    source.onopen = function () { say('Live updates on.'); };
    source.onerror = function () { say('Live updates: reconnecting…'); };
    on('row', upsert);
    on('remove', remove);
    on('rows', replaceRows);
    on('refresh', refresh);
  }

  function pause() {
    if (source) source.close();
    source = null;
    say('Live updates paused.');
  }

  if (toggle) {
    toggle.addEventListener('click', function () {
      var paused = toggle.getAttribute('aria-pressed') === 'true';
      if (paused) {
        toggle.setAttribute('aria-pressed', 'false');
        // What changed meanwhile comes whole: the page's version is stale.
        url = url.replace(/([?&])v=[^&]*/, '$1v=stale');
        connect();
      } else {
        toggle.setAttribute('aria-pressed', 'true');
        pause();
      }
    });
  }
  connect();
})();
