/*
 * app.js: the HQ dashboard's behaviour.  Talks only to branchmark-web's JSON
 * API on the same origin (docs/api.md): logs in (the session cookie is
 * HttpOnly, so this script never sees or stores the token), fills the region,
 * period and metric pickers, and draws the ranking, the early warnings, the
 * actions (docs/actions.md: opened from an alert, status changes, the
 * follow-up of done ones) and a branch's scorecard with Chart.js (vendored
 * under vendor/, never a CDN).  Changes are same-origin POSTs of JSON, which
 * is what the server's cross-site check lets through.
 *
 * Every piece of data goes into the DOM through textContent or attributes
 * set one by one (never innerHTML), so a branch called "<script>" stays text.
 * Views: "#/" is the ranking, "#/branch/CODE" a branch's scorecard; the
 * pickers' state lives in the query part of the hash so a reload or a
 * shared link shows the same thing.
 */
'use strict';

(function () {
  /* ------------------------------------------------------------ helpers */

  const $ = (id) => document.getElementById(id);

  // el(tag, props, ...children): props are set as properties (className,
  // title, type...) except "data" (dataset) and "style" (object); children
  // are nodes or strings, and strings always become text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'data') Object.assign(node.dataset, v);
        else if (k === 'style') Object.assign(node.style, v);
        else if (k === 'text') node.textContent = v;
        else node[k] = v;
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    return s ? '?' + s : '';
  }

  class AuthError extends Error {}

  // api(path, params): GET (or POST with body) on the API; resolves with
  // the parsed JSON.  A 401 throws AuthError (the view goes back to the
  // login form); any other failure throws an Error with the server's message.
  async function api(path, params, init) {
    const resp = await fetch(path + query(params || {}), Object.assign({
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      cache: 'no-store',
    }, init || {}));
    if (resp.status === 401) throw new AuthError('not signed in');
    if (resp.status === 204) return null;
    let body = null;
    const text = await resp.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      throw new Error(`${path}: the server sent something that is not JSON (HTTP ${resp.status})`);
    }
    if (!resp.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status}`;
      throw new Error(msg);
    }
    return body;
  }

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  // decimalsOf(values): how many decimals the figures of one table need.
  // The API's numbers are already rounded by the CLI, but JSON drops
  // trailing zeros (39.0 arrives as 39), so a table shows every figure
  // with the most decimals any of them has (at least 1, at most 3).
  function decimalsOf(values) {
    let d = 1;
    for (const v of values) {
      if (!isNum(v)) continue;
      const m = /\.(\d+)$/.exec(String(v));
      if (m) d = Math.max(d, Math.min(3, m[1].length));
    }
    return d;
  }

  // fmt(v, d): a figure with d decimals (default: as the API sent it);
  // missing values as an en dash.
  function fmt(v, d) {
    if (!isNum(v)) return '–';
    return d === undefined ? String(v) : v.toFixed(d);
  }

  function fmtSigned(v, d) {
    if (!isNum(v)) return '–';
    return (v > 0 ? '+' : '') + fmt(v, d);
  }

  function fmtInt(v) {
    return isNum(v) ? v.toLocaleString('en-US') : '–';
  }

  function setStatus(node, text, isError) {
    node.textContent = text || '';
    node.classList.toggle('error', !!isError);
  }

  function csvHref(path, params) {
    return path + query(Object.assign({}, params, { format: 'csv' }));
  }

  /* -------------------------------------------------------------- state */

  const state = {
    user: null,
    regions: [],          // [{code, name}] the user may see
    metrics: [],          // /api/metrics rows
    metricInfo: {},       // metric -> row
    branchRegion: {},     // branch code -> region code (from the rankings seen)
    charts: [],           // Chart instances of the scorecard view
    seq: 0,               // increases on every render; stale responses are dropped
  };

  function metricLabel(m) {
    return m.replace(/_/g, ' ');
  }

  // A change is good or bad depending on the metric's direction.
  function changeClass(metric, arrow, change) {
    const info = state.metricInfo[metric];
    const lowerBetter = info && info.better === 'lower';
    if (!arrow) return 'flat';
    const up = arrow === 'up' || (isNum(change) && change > 0);
    return up !== lowerBetter ? 'good' : 'bad';
  }

  function changeCell(metric, arrow, change, previous, d) {
    const cls = changeClass(metric, arrow, change);
    const span = el('span', { className: 'chg ' + cls });
    if (arrow === 'up') span.append(el('span', { className: 'arrow', text: '▲' }));
    else if (arrow === 'down') span.append(el('span', { className: 'arrow', text: '▼' }));
    span.append(isNum(change) ? fmtSigned(change, d) : '–');
    const prev = isNum(previous) ? `previous ${fmt(previous, d)}` : 'no previous figure';
    span.title = arrow
      ? `${prev}; the change is significant at 95%`
      : `${prev}; the change is not significant at 95%`;
    span.dataset.arrow = arrow || '';
    return span;
  }

  // intervalCell(lo, hi, value, scale, ref): "39.1 – 58.5" above a bar that
  // places the interval and the value on the table's common scale.
  function intervalCell(lo, hi, value, scale, ref, d) {
    const td = el('td', { className: 'c-interval' });
    const text = isNum(lo) && isNum(hi) ? `${fmt(lo, d)} – ${fmt(hi, d)}` : 'no interval';
    td.append(el('div', { className: 'ci-text', text }));
    if (scale && isNum(lo) && isNum(hi)) {
      const pos = (v) => `${Math.max(0, Math.min(100, ((v - scale.min) / (scale.max - scale.min)) * 100))}%`;
      const bar = el('div', { className: 'ibar', title: `95% interval ${text}` });
      const left = Math.max(0, Math.min(100, ((lo - scale.min) / (scale.max - scale.min)) * 100));
      const right = Math.max(0, Math.min(100, ((hi - scale.min) / (scale.max - scale.min)) * 100));
      bar.append(el('div', { className: 'ibar-range', style: { left: `${left}%`, width: `${Math.max(right - left, 0.8)}%` } }));
      if (isNum(ref)) bar.append(el('div', { className: 'ibar-ref', style: { left: pos(ref) } }));
      if (isNum(value)) bar.append(el('div', { className: 'ibar-dot', style: { left: pos(value) } }));
      td.append(bar);
    }
    return td;
  }

  function scaleOf(rows, loKey, hiKey, valKey, extra) {
    let min = Infinity;
    let max = -Infinity;
    for (const r of rows) {
      for (const k of [loKey, hiKey, valKey]) {
        if (isNum(r[k])) {
          min = Math.min(min, r[k]);
          max = Math.max(max, r[k]);
        }
      }
    }
    if (isNum(extra)) {
      min = Math.min(min, extra);
      max = Math.max(max, extra);
    }
    if (!Number.isFinite(min)) return null;
    if (max - min < 1e-9) {
      min -= 1;
      max += 1;
    }
    const pad = (max - min) * 0.04;
    return { min: min - pad, max: max + pad };
  }

  /* ------------------------------------------------------------ routing */

  function readRoute() {
    const h = location.hash.replace(/^#/, '');
    const [path, qs] = h.split('?');
    const params = new URLSearchParams(qs || '');
    const m = /^\/branch\/([A-Za-z0-9_.-]{1,32})$/.exec(path || '');
    return {
      branch: m ? m[1] : null,
      region: params.get('region') || '',
      period: params.get('period') || 'month',
      metric: params.get('metric') || '',
    };
  }

  function writeRoute(route) {
    const p = query({ region: route.region, period: route.period, metric: route.metric });
    const path = route.branch ? `/branch/${route.branch}` : '/';
    const next = `#${path}${p}`;
    if (location.hash !== next) location.hash = next;
    else render();
  }

  function currentPickers() {
    return {
      region: $('pick-region').value,
      period: $('pick-period').value,
      metric: $('pick-metric').value,
    };
  }

  /* -------------------------------------------------------------- login */

  function showLogin(message) {
    state.user = null;
    document.title = 'Sign in · Branchmark';
    destroyCharts();
    $('session').hidden = true;
    $('dash-view').hidden = true;
    $('login-view').hidden = false;
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('login-user').focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const user = $('login-user').value.trim();
    const password = $('login-password').value;
    const button = $('login-submit');
    button.disabled = true;
    $('login-error').hidden = true;
    try {
      const resp = await fetch('/api/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ user, password }),
      });
      if (!resp.ok) {
        let msg = `sign-in failed (HTTP ${resp.status})`;
        try {
          const body = await resp.json();
          if (body && typeof body.error === 'string') msg = body.error;
        } catch (e) { /* keep the generic message */ }
        showLogin(msg);
        return;
      }
      $('login-password').value = '';
      await start();
    } catch (e) {
      showLogin(`could not reach the server: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function onLogout() {
    try {
      await api('/api/logout', {}, { method: 'POST' });
    } catch (e) { /* the session is gone either way */ }
    showLogin('');
  }

  /* ------------------------------------------------------------ startup */

  async function start() {
    let me;
    try {
      me = await api('/api/me');
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin('');
        return;
      }
      showLogin(`could not reach the server: ${e.message}`);
      return;
    }
    state.user = me.user;
    let regions;
    let metrics;
    try {
      [regions, metrics] = await Promise.all([api('/api/regions'), api('/api/metrics')]);
    } catch (e) {
      if (e instanceof AuthError) showLogin('');
      else showLogin(`could not load the dashboard: ${e.message}`);
      return;
    }
    state.regions = Array.isArray(regions) ? regions : [];
    state.metrics = Array.isArray(metrics) ? metrics : [];
    state.metricInfo = {};
    for (const m of state.metrics) state.metricInfo[m.metric] = m;

    $('session-user').textContent = state.user;
    $('session-user').title = `signed in as ${state.user}`;
    $('session').hidden = false;
    $('login-view').hidden = true;
    $('dash-view').hidden = false;

    const regionSel = $('pick-region');
    clear(regionSel);
    // Only a user who sees more than one region gets the chain-wide view;
    // a regional manager's picker holds just the own region.
    if (state.regions.length !== 1) regionSel.append(el('option', { value: '', text: 'All regions' }));
    for (const r of state.regions) {
      const label = r.name && r.name !== r.code ? `${r.code} — ${r.name}` : r.code;
      regionSel.append(el('option', { value: r.code, text: label }));
    }

    const metricSel = $('pick-metric');
    clear(metricSel);
    for (const m of state.metrics) {
      metricSel.append(el('option', { value: m.metric, text: `${metricLabel(m.metric)} (${m.unit})`, title: m.definition }));
    }
    render();
  }

  // Applies the route to the pickers (falling back to what exists) and
  // draws the view it names.
  function render() {
    if (!state.user) return;
    const route = readRoute();
    const regionSel = $('pick-region');
    const codes = Array.from(regionSel.options).map((o) => o.value);
    regionSel.value = codes.includes(route.region) ? route.region : codes[0] || '';
    $('pick-period').value = ['week', 'month', 'quarter'].includes(route.period) ? route.period : 'month';
    const metricSel = $('pick-metric');
    const names = state.metrics.map((m) => m.metric);
    metricSel.value = names.includes(route.metric) ? route.metric : names.includes('nps') ? 'nps' : names[0] || '';

    const seq = ++state.seq;
    const p = currentPickers();
    if (route.branch) {
      $('ranking-view').hidden = true;
      $('branch-view').hidden = false;
      $('back-link').href = `#/${query(p)}`;
      renderBranch(seq, route.branch, p).catch(onError);
    } else {
      destroyCharts();
      $('branch-view').hidden = true;
      $('ranking-view').hidden = false;
      renderRanking(seq, p).catch(onError);
      renderAlerts(seq, p, null, $('alerts-list'), $('alerts-status'), $('alerts-csv'), $('alerts-subtitle')).catch(onError);
      renderActions('region', { region: p.region }).catch(onError);
    }
  }

  function onError(e) {
    if (e instanceof AuthError) showLogin('your session has ended; please sign in again');
    else console.error(e);
  }

  /* ------------------------------------------------------------ ranking */

  async function renderRanking(seq, p) {
    const status = $('ranking-status');
    const tbody = $('ranking-table').querySelector('tbody');
    const params = { metric: p.metric, region: p.region, period: p.period };
    $('ranking-csv').href = csvHref('/api/rank', params);
    const info = state.metricInfo[p.metric];
    $('ranking-title').textContent = `Ranking: ${metricLabel(p.metric)}`;
    document.title = `${metricLabel(p.metric)}${p.region ? ` in ${p.region}` : ''} · Branchmark`;
    $('ranking-subtitle').textContent = info ? `${info.definition}; ${info.better} is better` : '';
    setStatus(status, 'Loading…');
    let data;
    try {
      data = await api('/api/rank', params);
    } catch (e) {
      if (seq !== state.seq) return;
      if (e instanceof AuthError) throw e;
      clear(tbody);
      clear($('ranking-aggregates'));
      clear($('ranking-positions'));
      clear($('ranking-notes'));
      setStatus(status, e.message, true);
      return;
    }
    if (seq !== state.seq) return;
    const rows = Array.isArray(data.ranking) ? data.ranking : [];
    const aggregates = Array.isArray(data.aggregates) ? data.aggregates : [];
    setStatus(status, rows.length ? '' : 'No branch has data for this metric and period.');

    // The reference line in the bars: the region's figure when one region
    // is shown, else the chain's.
    const refAgg = aggregates.find((a) => p.region && a.scope === 'region' && a.code === p.region) ||
      aggregates.find((a) => a.scope === 'chain');
    const ref = refAgg ? refAgg.value : null;

    const d = decimalsOf([...rows, ...aggregates].flatMap((r) => [r.value, r.ci_low, r.ci_high, r.previous, r.change]));
    const aggBox = $('ranking-aggregates');
    clear(aggBox);
    // A scoped login (regional manager, branch) gets the whole chain's lines
    // from the database's yardstick, and chain_positions: show every region
    // then, a suppressed one (too few branches behind it) without figures.
    const positions = Array.isArray(data.chain_positions) ? data.chain_positions : null;
    for (const a of aggregates) {
      if (a.scope === 'region' && p.region && a.code !== p.region && !positions) continue;
      if (a.n === null || a.n === undefined) {
        aggBox.append(el('div', { className: 'agg agg-suppressed', data: { scope: a.scope, code: a.code },
          title: 'suppressed: fewer than 3 branches you cannot see stand behind this figure' },
          `${a.scope === 'chain' ? 'Chain' : 'Region'} ${a.code}`, el('span', { className: 'muted', text: '  suppressed' })));
        continue;
      }
      const box = el('div', { className: 'agg', data: { scope: a.scope, code: a.code } },
        `${a.scope === 'chain' ? 'Chain' : 'Region'} ${a.code}`,
        el('b', { text: fmt(a.value, d) }),
        el('span', { className: 'muted', text: `  n ${fmtInt(a.n)}, 95% ${fmt(a.ci_low, d)} – ${fmt(a.ci_high, d)}` }));
      box.title = `95% interval ${fmt(a.ci_low, d)} – ${fmt(a.ci_high, d)}; change ${fmtSigned(a.change, d)}`;
      aggBox.append(box);
    }

    // "B001: 14-19 of 212": each own branch's chain-wide rank range.
    const posBox = $('ranking-positions');
    clear(posBox);
    posBox.hidden = !positions;
    if (positions) {
      posBox.append(el('span', { className: 'muted', text: 'Chain-wide: ' }));
      if (!positions.length) posBox.append(el('span', { className: 'muted', text: 'not computed for this period' }));
      for (const [i, q] of positions.entries()) {
        if (i) posBox.append(document.createTextNode('; '));
        const text = `${q.branch}: ${q.chain_rank ? q.chain_rank.replace('-', '–') : 'not ranked'} of ${fmtInt(q.of)}`;
        posBox.append(el('span', { className: 'position' + (q.current ? '' : ' stale'), data: { branch: q.branch },
          title: `computed ${q.as_of}${q.current ? '' : '; the chain\'s figures have changed since'}`, text }));
      }
    }

    const scale = scaleOf(rows, 'ci_low', 'ci_high', 'value', ref);
    const groupSize = {};
    for (const r of rows) if (r.group !== null && r.group !== undefined) groupSize[r.group] = (groupSize[r.group] || 0) + 1;

    clear(tbody);
    let lastGroup;
    let prevLow = false;
    let shade = 1;
    for (const r of rows) {
      if (r.region && r.branch) state.branchRegion[r.branch] = r.region;
      const grouped = r.group !== null && r.group !== undefined && !r.low_n;
      // Low-n rows (listed, not ranked) form one block after the ranked ones.
      const newGroup = r.low_n ? !prevLow : !grouped || r.group !== lastGroup;
      prevLow = !!r.low_n;
      if (newGroup) shade = 1 - shade;
      const classes = [shade ? 'grp-b' : 'grp-a'];
      if (newGroup) classes.push('grp-start');
      else classes.push('grp-cont');
      if (grouped && groupSize[r.group] > 1) classes.push('tied');
      if (r.low_n) classes.push('low-n');
      lastGroup = grouped ? r.group : undefined;

      const rankCell = el('td', { className: 'c-rank' });
      if (r.low_n) {
        rankCell.append(el('span', { className: 'badge badge-lown', text: 'low n', title: `n below ${info ? info.min_n : 'the minimum'} ${info ? info.n_counts : ''}: listed, not ranked` }));
      } else {
        rankCell.append(el('span', { className: 'rank-text', text: r.rank || '–' }));
        if (grouped && groupSize[r.group] > 1 && newGroup) {
          rankCell.append(el('span', { className: 'badge badge-tie', text: 'tie', title: 'the 95% intervals overlap the group leader\'s: these branches share the rank range' }));
        }
      }
      const link = el('button', { type: 'button', className: 'branch-link', text: r.branch, title: `open the scorecard of ${r.branch}` });
      link.addEventListener('click', () => writeRoute(Object.assign({ branch: r.branch }, currentPickers())));
      const tr = el('tr', { className: classes.join(' '), data: { branch: r.branch, group: grouped ? String(r.group) : '', rank: r.rank || '' } },
        rankCell,
        el('td', { className: 'c-branch' }, link, el('span', { className: 'branch-name', text: r.name || '' })),
        el('td', { className: 'c-region', text: r.region || '' }),
        el('td', { className: 'num c-value', text: fmt(r.value, d) }),
        el('td', { className: 'num c-n', text: fmtInt(r.n) }),
        intervalCell(r.ci_low, r.ci_high, r.value, scale, ref, d),
        el('td', { className: 'num c-change' }, changeCell(p.metric, r.arrow, r.change, r.previous, d)));
      tbody.append(tr);
    }

    const notes = $('ranking-notes');
    clear(notes);
    for (const n of data.notes || []) notes.append(el('li', { text: n }));
    if (refAgg) notes.append(el('li', { text: `bars: shaded = 95% interval, dot = value, dashed line = ${refAgg.scope} ${refAgg.code} (${fmt(refAgg.value, d)})` }));
  }

  /* ------------------------------------------------------------- alerts */

  // renderAlerts: the early-warning list of a region and period, or of one
  // branch when `branch` is given (the API lists by region; this filters).
  async function renderAlerts(seq, p, branch, list, status, csv, subtitle) {
    const params = { region: p.region, period: p.period };
    csv.href = csvHref('/api/alerts', params);
    setStatus(status, 'Loading…');
    let data;
    try {
      data = await api('/api/alerts', params);
    } catch (e) {
      if (seq !== state.seq) return;
      if (e instanceof AuthError) throw e;
      clear(list);
      setStatus(status, e.message, true);
      return;
    }
    if (seq !== state.seq) return;
    setStatus(status, '');
    // "month 2026-11 against the previous ...": the period the warnings are
    // of, the action's source reference ("nps 2026-11").
    const periodOf = /^(?:week|month|quarter) (\S+) against/.exec((data.notes || [])[0] || '');
    const all = Array.isArray(data.alerts) ? data.alerts : [];
    const alerts = branch ? all.filter((a) => a.branch === branch) : all;
    subtitle.textContent = (data.notes || []).join('; ');
    clear(list);
    if (!alerts.length) {
      list.append(el('li', { className: 'empty', text: branch ? `No early warning for ${branch} in this period.` : 'No early warning in this period.' }));
      return;
    }
    for (const a of alerts) {
      const info = state.metricInfo[a.metric];
      const unit = info ? ` ${info.unit}` : '';
      const d = decimalsOf([a.current, a.baseline]);
      const who = branch
        ? el('span', { className: 'alert-branch', text: a.branch })
        : el('button', { type: 'button', className: 'branch-link alert-branch', text: a.branch, title: `open the scorecard of ${a.branch}` });
      if (!branch) {
        who.addEventListener('click', () => {
          state.branchRegion[a.branch] = a.region;
          writeRoute(Object.assign({ branch: a.branch }, currentPickers()));
        });
      }
      const li = el('li', { data: { branch: a.branch, metric: a.metric } });
      const open = el('button', { type: 'button', className: 'btn btn-small alert-open-action', text: 'Open an action',
        title: `open an action for ${metricLabel(a.metric)} at ${a.branch}` });
      open.addEventListener('click', () => {
        const ref = periodOf ? `${a.metric} ${periodOf[1]}` : a.metric;
        toggleOpenForm(li, open, { branch: a.branch, metric: a.metric, source: 'alert', source_ref: ref });
      });
      list.append(li);
      li.append(
        el('div', { className: 'alert-head' },
          who,
          el('span', { className: 'muted', text: a.region || '' }),
          el('span', { className: 'alert-metric', text: metricLabel(a.metric) }),
          el('span', { className: 'alert-figures', text: `${fmt(a.current, d)}${unit} (n ${fmtInt(a.n)}) vs baseline ${fmt(a.baseline, d)} (n ${fmtInt(a.baseline_n)})` }),
          el('span', { className: 'alert-sigma', text: `${fmt(a.sigmas, 1)} σ`, title: 'standard errors away from the baseline' })),
        a.likely_causes ? el('p', { className: 'alert-causes', text: `Likely causes: ${a.likely_causes}` }) : null,
        el('div', { className: 'alert-tools' }, open));
    }
  }

  /* ------------------------------------------------------------ actions */

  // The day in the browser's time zone as YYYY-MM-DD (the server checks
  // dates against the chain's own "today" and says so when one is off).
  function isoDay(offsetDays) {
    const d = new Date();
    d.setDate(d.getDate() + (offsetDays || 0));
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function postJson(path, body) {
    return api(path, null, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
  }

  // field(label, input): a labelled form field; the label wraps the input.
  function field(label, input, cls) {
    return el('label', { className: 'field' + (cls ? ' ' + cls : '') }, el('span', { className: 'field-label', text: label }), input);
  }

  const STATUS_LABEL = { open: 'open', in_progress: 'in progress', done: 'done', dropped: 'dropped' };
  const OWNER_LABEL = { branch: 'branch manager', regional: 'regional manager' };

  // Shows (or hides again) the form that opens an action under an alert:
  // branch and metric come from the alert; what is to be done, the owner,
  // the due date and a target are asked.  On success the lists of actions
  // on the page are drawn again.
  function toggleOpenForm(li, button, pre) {
    const existing = li.querySelector('form.action-form');
    if (existing) {
      existing.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    const what = el('textarea', { className: 'af-what', name: 'what', required: true, maxLength: 2000, rows: 2,
      placeholder: 'e.g. call back every detractor within a day' });
    const owner = el('select', { className: 'af-owner', name: 'owner' },
      el('option', { value: 'branch', text: OWNER_LABEL.branch }),
      el('option', { value: 'regional', text: OWNER_LABEL.regional }));
    const due = el('input', { className: 'af-due', name: 'due', type: 'date', required: true, value: isoDay(14) });
    const target = el('input', { className: 'af-target', name: 'target', maxLength: 200, placeholder: 'e.g. NPS >= 10' });
    const err = el('p', { className: 'form-error af-error', role: 'alert', hidden: true });
    const submit = el('button', { type: 'submit', className: 'btn btn-primary af-submit', text: 'Open the action' });
    const cancel = el('button', { type: 'button', className: 'btn af-cancel', text: 'Cancel' });
    const form = el('form', { className: 'action-form', data: { branch: pre.branch, metric: pre.metric } },
      el('p', { className: 'af-about' }, 'New action for ', el('b', { className: 'af-branch', text: pre.branch }), ', ',
        el('b', { className: 'af-metric', text: metricLabel(pre.metric) }),
        el('span', { className: 'muted', text: ` (from the early warning ${pre.source_ref})` })),
      field('What is to be done', what, 'field-wide'),
      el('div', { className: 'field-row' }, field('Owner', owner), field('Due', due), field('Target (optional)', target)),
      err,
      el('div', { className: 'form-buttons' }, submit, cancel));
    cancel.addEventListener('click', () => toggleOpenForm(li, button));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      submit.disabled = true;
      const body = { branch: pre.branch, metric: pre.metric, what: what.value.trim(), owner: owner.value,
        due: due.value, source: pre.source, source_ref: pre.source_ref };
      if (target.value.trim()) body.target = target.value.trim();
      try {
        const r = await postJson('/api/action/open', body);
        form.remove();
        button.setAttribute('aria-expanded', 'false');
        const done = el('p', { className: 'af-done', role: 'status', data: { id: String(r.id) },
          text: `Action #${r.id} opened (due ${body.due}).` });
        const old = li.querySelector('.af-done');
        if (old) old.remove();
        li.append(done);
        refreshActions();
      } catch (e) {
        if (e instanceof AuthError) return onError(e);
        err.textContent = e.message;
        err.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    li.append(form);
    button.setAttribute('aria-expanded', 'true');
    what.focus();
  }

  // The form that changes an action's status (in progress, done with the
  // day it took effect, dropped) or only adds a comment.
  function toggleUpdateForm(li, button, a) {
    const existing = li.querySelector('form.update-form');
    if (existing) {
      existing.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    const status = el('select', { className: 'uf-status', name: 'status' },
      el('option', { value: '', text: 'keep the status (comment only)' }));
    for (const st of ['open', 'in_progress', 'done', 'dropped']) {
      if (st !== a.status) status.append(el('option', { value: st, text: STATUS_LABEL[st] }));
    }
    status.value = a.status === 'open' ? 'in_progress' : 'done';
    const effective = el('input', { className: 'uf-effective', name: 'effective', type: 'date', value: isoDay(0), max: isoDay(0) });
    const effField = field('Took effect on', effective);
    const comment = el('textarea', { className: 'uf-comment', name: 'comment', maxLength: 2000, rows: 2, placeholder: 'what happened' });
    const err = el('p', { className: 'form-error uf-error', role: 'alert', hidden: true });
    const submit = el('button', { type: 'submit', className: 'btn btn-primary uf-submit', text: 'Save' });
    const cancel = el('button', { type: 'button', className: 'btn uf-cancel', text: 'Cancel' });
    const sync = () => { effField.hidden = status.value !== 'done'; };
    status.addEventListener('change', sync);
    sync();
    const form = el('form', { className: 'update-form', data: { id: String(a.id) } },
      el('div', { className: 'field-row' }, field('Status', status), effField),
      field('Comment', comment, 'field-wide'),
      err,
      el('div', { className: 'form-buttons' }, submit, cancel));
    cancel.addEventListener('click', () => toggleUpdateForm(li, button, a));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      const body = { id: a.id };
      if (status.value) body.status = status.value;
      if (status.value === 'done' && effective.value) body.effective = effective.value;
      if (comment.value.trim()) body.comment = comment.value.trim();
      if (!body.status && !body.comment) {
        err.textContent = 'choose a new status or write a comment';
        err.hidden = false;
        return;
      }
      submit.disabled = true;
      try {
        await postJson('/api/action/update', body);
        refreshActions();
      } catch (e) {
        if (e instanceof AuthError) return onError(e);
        err.textContent = e.message;
        err.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
    li.append(form);
    button.setAttribute('aria-expanded', 'true');
    status.focus();
  }

  // The follow-up of a done action: the verdict and the effect with its
  // 95% interval and the n behind it, from /api/followup.
  async function renderFollowup(box, a) {
    box.append(el('span', { className: 'muted', text: 'follow-up: loading…' }));
    let data;
    try {
      data = await api('/api/followup', { action: a.id });
    } catch (e) {
      if (e instanceof AuthError) throw e;
      clear(box);
      box.append(el('span', { className: 'status error', text: `follow-up: ${e.message}` }));
      return;
    }
    clear(box);
    const eff = Array.isArray(data.effect) && data.effect[0] ? data.effect[0] : null;
    if (!eff) {
      box.append(el('span', { className: 'muted', text: 'follow-up: no answer' }));
      return;
    }
    const good = eff.verdict === 'improved';
    const bad = eff.verdict === 'worse';
    box.dataset.verdict = eff.verdict || '';
    box.append(el('span', { className: 'fu-label', text: 'Follow-up: ' }),
      el('span', { className: 'fu-verdict' + (good ? ' good' : bad ? ' bad' : ''), text: String(eff.verdict || '').replace(/_/g, ' ') }));
    if (isNum(eff.effect)) {
      const d = decimalsOf([eff.effect, eff.effect_low, eff.effect_high]);
      box.append(' ', el('span', { className: 'fu-effect', text: `effect ${fmtSigned(eff.effect, d)}` }), ' ',
        el('span', { className: 'fu-interval', text: `(95% ${fmt(eff.effect_low, d)} – ${fmt(eff.effect_high, d)})` }));
    }
    const sides = Array.isArray(data.followup) ? data.followup : [];
    const mine = sides[0];
    if (mine) {
      box.append(el('span', { className: 'fu-n muted', text: `; n before ${fmtInt(mine.before_n)}, after ${fmtInt(mine.after_n)}` +
        (sides[1] ? ` (comparison: ${sides[1].scope})` : '') }));
    }
    if (eff.reason) box.append(el('span', { className: 'fu-reason muted', text: `; ${eff.reason}` }));
  }

  // renderActions(list, params): the actions of a region (or the chain) or
  // of one branch, as the API orders them: overdue ones first (most days
  // overdue first), then by due date.  Each list keeps its own sequence so
  // a refresh after a change does not disturb the rest of the view.
  const actionLists = {};

  async function renderActions(key, params) {
    const ids = key === 'branch'
      ? { list: 'branch-actions-list', status: 'branch-actions-status', csv: 'branch-actions-csv', subtitle: 'branch-actions-subtitle' }
      : { list: 'actions-list', status: 'actions-status', csv: 'actions-csv', subtitle: 'actions-subtitle' };
    const seq = (actionLists[key] = { params, seq: ((actionLists[key] || {}).seq || 0) + 1 }).seq;
    const list = $(ids.list);
    const status = $(ids.status);
    const q = Object.assign({ status: 'all', limit: 200 }, params);
    $(ids.csv).href = csvHref('/api/actions', q);
    setStatus(status, 'Loading…');
    let data;
    try {
      data = await api('/api/actions', q);
    } catch (e) {
      if (actionLists[key].seq !== seq) return;
      if (e instanceof AuthError) throw e;
      clear(list);
      setStatus(status, e.message, true);
      return;
    }
    if (actionLists[key].seq !== seq) return;
    setStatus(status, '');
    const rows = Array.isArray(data.actions) ? data.actions : [];
    $(ids.subtitle).textContent = (data.notes || []).join('; ');
    clear(list);
    if (!rows.length) {
      list.append(el('li', { className: 'empty', text: params.branch ? `No action for ${params.branch} yet.` : 'No action yet.' }));
      return;
    }
    const followups = [];
    for (const a of rows) {
      const overdue = a.overdue === true || a.days_overdue > 0;
      const li = el('li', { className: `action st-${a.status}${overdue ? ' overdue' : ''}`,
        data: { id: String(a.id), status: a.status, branch: a.branch, metric: a.metric, overdue: overdue ? '1' : '0' } });
      const who = key === 'branch'
        ? el('span', { className: 'action-branch', text: a.branch })
        : el('button', { type: 'button', className: 'branch-link action-branch', text: a.branch, title: `open the scorecard of ${a.branch}` });
      if (key !== 'branch') {
        who.addEventListener('click', () => {
          state.branchRegion[a.branch] = a.region;
          writeRoute(Object.assign({ branch: a.branch }, currentPickers()));
        });
      }
      const about = [a.section, a.contact_point, a.complaint_category].filter(Boolean).join(', ');
      const head = el('div', { className: 'action-head' },
        el('span', { className: `badge action-status st-${a.status}`, text: STATUS_LABEL[a.status] || a.status }),
        who,
        el('span', { className: 'action-metric', text: metricLabel(a.metric) + (about ? ` (${about})` : '') }),
        el('span', { className: 'action-id muted', text: `#${a.id}` }));
      if (overdue) head.append(el('span', { className: 'badge badge-overdue action-overdue', text: `${fmtInt(a.days_overdue)} day${a.days_overdue === 1 ? '' : 's'} overdue` }));
      li.append(head, el('p', { className: 'action-what', text: a.what || '' }));
      const facts = el('p', { className: 'action-facts muted' },
        el('span', { className: 'action-owner', text: `owner: ${OWNER_LABEL[a.owner] || a.owner}` }), ' · ',
        el('span', { className: 'action-due', text: `due ${a.due}` }));
      if (a.target) facts.append(' · ', el('span', { className: 'action-target', text: `target ${a.target}` }));
      if (a.effective) facts.append(' · ', el('span', { className: 'action-effective', text: `took effect ${a.effective}` }));
      facts.append(' · ', el('span', { className: 'action-opened', text: `opened ${a.opened} by ${a.opened_by}` }));
      li.append(facts);
      if (a.status === 'done') {
        const box = el('p', { className: 'action-followup' });
        li.append(box);
        followups.push(renderFollowup(box, a));
      }
      if (a.status === 'open' || a.status === 'in_progress') {
        const upd = el('button', { type: 'button', className: 'btn btn-small action-update', text: 'Update' });
        upd.setAttribute('aria-expanded', 'false');
        upd.addEventListener('click', () => toggleUpdateForm(li, upd, a));
        li.append(el('div', { className: 'action-tools' }, upd));
      }
      list.append(li);
    }
    await Promise.all(followups);
  }

  // Draws the visible lists of actions again (after an action was opened
  // or changed).
  function refreshActions() {
    for (const key of Object.keys(actionLists)) {
      const hidden = key === 'branch' ? $('branch-view').hidden : $('ranking-view').hidden;
      if (!hidden) renderActions(key, actionLists[key].params).catch(onError);
    }
  }

  /* ------------------------------------------------------------ scorecard */

  function destroyCharts() {
    for (const c of state.charts) c.destroy();
    state.charts = [];
  }

  function chartsAvailable() {
    return typeof window.Chart === 'function';
  }

  // trendSeries(data): metric -> [{period, value, ci_low, ci_high, n}],
  // oldest first, from the numeric "trend" table branchmark-web adds to
  // the scorecard; without it, from each metric's printed trend string
  // ("- - 73.2 52.9", no intervals, periods counted back from now).
  function trendSeries(data) {
    const out = {};
    if (Array.isArray(data.trend)) {
      for (const t of data.trend) {
        if (!t || typeof t.metric !== 'string') continue;
        (out[t.metric] = out[t.metric] || []).push(t);
      }
      return out;   // the API lists each metric's periods oldest first
    }
    for (const m of data.metrics || []) {
      if (typeof m.trend !== 'string') continue;
      const parts = m.trend.trim().split(/\s+/);
      out[m.metric] = parts.map((s, i) => ({
        period: i === parts.length - 1 ? 'now' : `−${parts.length - 1 - i}`,
        value: s === '-' ? null : Number(s),
        ci_low: null,
        ci_high: null,
      }));
    }
    return out;
  }

  const COLORS = {
    line: '#1f5fae',
    band: 'rgba(31, 95, 174, 0.16)',
    chain: '#8a97a8',
    good: '#1b7f4b',
    goodSoft: 'rgba(27, 127, 75, 0.35)',
    bad: '#b42318',
    badSoft: 'rgba(180, 35, 24, 0.35)',
    grid: '#e6ebf1',
  };

  function trendChart(canvas, series, chainValue) {
    const labels = series.map((t) => String(t.period));
    const values = series.map((t) => (isNum(t.value) ? t.value : null));
    const hasCi = series.some((t) => isNum(t.ci_low) && isNum(t.ci_high));
    const datasets = [];
    if (hasCi) {
      datasets.push({
        label: '95% high', data: series.map((t) => (isNum(t.ci_high) ? t.ci_high : null)),
        borderWidth: 0, pointRadius: 0, backgroundColor: COLORS.band, fill: '+1', spanGaps: false,
      });
      datasets.push({
        label: '95% low', data: series.map((t) => (isNum(t.ci_low) ? t.ci_low : null)),
        borderWidth: 0, pointRadius: 0, backgroundColor: COLORS.band, fill: false, spanGaps: false,
      });
    }
    datasets.push({
      label: 'value', data: values, borderColor: COLORS.line, backgroundColor: COLORS.line,
      borderWidth: 2, pointRadius: 3, tension: 0, fill: false, spanGaps: true,
    });
    if (isNum(chainValue)) {
      datasets.push({
        label: 'chain now', data: labels.map(() => chainValue), borderColor: COLORS.chain,
        borderWidth: 1, borderDash: [4, 3], pointRadius: 0, fill: false,
      });
    }
    return new window.Chart(canvas, {
      type: 'line',
      data: { labels, datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { display: false },
          tooltip: { filter: (item) => item.dataset.label === 'value' || item.dataset.label === 'chain now' },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, font: { size: 10 } } },
          y: { grid: { color: COLORS.grid }, ticks: { font: { size: 10 }, maxTicksLimit: 5 } },
        },
      },
    });
  }

  // Draws each bar's 95% interval as a whisker with caps (Chart.js has no
  // error bars of its own).
  const whiskerPlugin = {
    id: 'bmWhiskers',
    afterDatasetsDraw(chart) {
      const meta = chart.getDatasetMeta(0);
      const rows = chart.data.datasets[0].bmRows || [];
      const x = chart.scales.x;
      const ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = '#2b3440';
      ctx.lineWidth = 1.5;
      meta.data.forEach((bar, i) => {
        const r = rows[i];
        if (!r || !isNum(r.gap_low) || !isNum(r.gap_high)) return;
        const y = bar.y;
        const x0 = x.getPixelForValue(r.gap_low);
        const x1 = x.getPixelForValue(r.gap_high);
        const cap = Math.max(3, Math.min(7, (bar.height || 10) / 3));
        ctx.beginPath();
        ctx.moveTo(x0, y);
        ctx.lineTo(x1, y);
        ctx.moveTo(x0, y - cap);
        ctx.lineTo(x0, y + cap);
        ctx.moveTo(x1, y - cap);
        ctx.lineTo(x1, y + cap);
        ctx.stroke();
      });
      // The zero line: where own equals the competitors.
      const z = x.getPixelForValue(0);
      ctx.strokeStyle = '#5d6b7e';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(z, chart.chartArea.top);
      ctx.lineTo(z, chart.chartArea.bottom);
      ctx.stroke();
      ctx.restore();
    },
  };

  // The API says "up" or "down" when the gap's interval excludes zero.
  function gapSignificant(r) {
    return r.significant === true || r.significant === 'up' || r.significant === 'down';
  }

  function gapChart(canvas, rows) {
    const labels = rows.map((r) => r.section);
    const colors = rows.map((r) => {
      const pos = isNum(r.gap) && r.gap >= 0;
      if (gapSignificant(r)) return pos ? COLORS.good : COLORS.bad;
      return pos ? COLORS.goodSoft : COLORS.badSoft;
    });
    let lo = 0;
    let hi = 0;
    for (const r of rows) {
      for (const v of [r.gap, r.gap_low, r.gap_high]) {
        if (isNum(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    return new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels,
        datasets: [{
          label: 'gap (own − competitors)',
          data: rows.map((r) => (isNum(r.gap) ? r.gap : null)),
          backgroundColor: colors,
          borderColor: colors.map((c) => c.replace(/, 0\.35\)$/, ', 0.9)')),
          borderWidth: 1,
          barPercentage: 0.7,
          bmRows: rows,
        }],
      },
      options: {
        indexAxis: 'y',
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (item) => {
                const r = rows[item.dataIndex];
                return `gap ${fmtSigned(r.gap)} (95%: ${fmt(r.gap_low)} – ${fmt(r.gap_high)}); own ${fmt(r.own)} n ${r.own_n}, competitors ${fmt(r.competitors)} n ${r.competitors_n}`;
              },
            },
          },
        },
        scales: {
          x: {
            suggestedMin: lo,
            suggestedMax: hi,
            grid: { color: COLORS.grid },
            title: { display: true, text: 'gap in points (own − competitors), with 95% interval' },
          },
          y: { grid: { display: false } },
        },
      },
      plugins: [whiskerPlugin],
    });
  }

  async function renderBranch(seq, branch, p) {
    destroyCharts();
    const status = $('scorecard-status');
    const tbody = $('scorecard-table').querySelector('tbody');
    const params = { branch, period: p.period };
    $('scorecard-title').textContent = `Scorecard ${branch}`;
    document.title = `${branch} scorecard · Branchmark`;
    $('scorecard-subtitle').textContent = '';
    $('scorecard-csv').href = csvHref('/api/scorecard', params);
    clear(tbody);
    clear($('trend-charts'));
    clear($('scorecard-notes'));
    setStatus(status, 'Loading…');

    // Competitor gaps are mystery-shopping scores, which are sparse: the
    // CLI's default period for them is the quarter, and so is ours.
    const gapParams = { branch, period: 'quarter' };
    clear($('branch-actions-list'));
    renderActions('branch', { branch }).catch(onError);
    const gapsP = api('/api/competitors', gapParams).then((d) => ({ d }), (e) => ({ e }));

    let data;
    try {
      data = await api('/api/scorecard', params);
    } catch (e) {
      if (seq !== state.seq) return;
      if (e instanceof AuthError) throw e;
      setStatus(status, e.message, true);
      clear($('gaps-table').querySelector('tbody'));
      setStatus($('gaps-status'), '');
      clear($('branch-alerts-list'));
      return;
    }
    if (seq !== state.seq) return;
    setStatus(status, '');
    const notes = data.notes || [];
    // The first note names the branch: "branch B004 (Pleven Center), region NORTH; month 2026-11; ..."
    const head = /^branch (\S+) \((.*)\), region (\S+?);/.exec(notes[0] || '');
    if (head) {
      $('scorecard-title').textContent = `${head[1]} ${head[2]}`;
      $('scorecard-subtitle').textContent = `Region ${head[3]}`;
      state.branchRegion[branch] = head[3];
    }
    for (const n of notes) $('scorecard-notes').append(el('li', { text: n }));

    const metrics = Array.isArray(data.metrics) ? data.metrics : [];
    for (const m of metrics) {
      const info = state.metricInfo[m.metric];
      const scale = scaleOf([m], 'ci_low', 'ci_high', 'value', m.chain);
      const d = decimalsOf([m.value, m.ci_low, m.ci_high, m.chain, m.previous]);
      const name = el('td', { className: 'c-metric' }, el('span', { text: metricLabel(m.metric) }));
      if (m.low_n) name.append(' ', el('span', { className: 'badge badge-lown', text: 'low n', title: info ? `n below ${info.min_n} ${info.n_counts}` : 'n below the minimum' }));
      const tr = el('tr', { className: m.low_n ? 'low-n' : '', data: { metric: m.metric } },
        name,
        el('td', { className: 'num c-value', text: fmt(m.value, d) }),
        el('td', { className: 'num c-n', text: fmtInt(m.n) }),
        intervalCell(m.ci_low, m.ci_high, m.value, scale, m.chain, d),
        el('td', { className: 'num c-chain', text: fmt(m.chain, d) }),
        el('td', { className: 'num c-change' }, changeCell(m.metric, m.arrow, isNum(m.value) && isNum(m.previous) ? m.value - m.previous : null, m.previous, d)));
      if (info) tr.title = info.definition;
      tbody.append(tr);
    }

    // Trend charts, one small chart per metric that has at least one value.
    const series = trendSeries(data);
    const grid = $('trend-charts');
    $('trends-subtitle').textContent = Array.isArray(data.trend)
      ? 'Value per period (line) with its 95% interval (shaded); dashed: the chain now'
      : 'Value per period (line); dashed: the chain now';
    if (!chartsAvailable()) {
      grid.append(el('p', { className: 'chart-empty', text: 'The chart library (vendor/chart.umd.js) did not load.' }));
    } else {
      for (const m of metrics) {
        const s = series[m.metric];
        if (!s || !s.some((t) => isNum(t.value))) continue;
        const info = state.metricInfo[m.metric];
        const canvas = el('canvas', { role: 'img', ariaLabel: `trend of ${m.metric}` });
        canvas.dataset.metric = m.metric;
        const tile = el('div', { className: 'chart-tile', data: { metric: m.metric } },
          el('h3', null, el('span', { text: metricLabel(m.metric) }), el('span', { className: 'unit', text: info ? info.unit : (m.unit || '') })),
          el('div', { className: 'chart-box' }, canvas));
        grid.append(tile);
        state.charts.push(trendChart(canvas, s, m.chain));
      }
      if (!grid.firstChild) grid.append(el('p', { className: 'chart-empty', text: 'No trend data for this branch.' }));
    }

    // Competitor gaps.
    const gapStatus = $('gaps-status');
    const gapBody = $('gaps-table').querySelector('tbody');
    $('gaps-csv').href = csvHref('/api/competitors', gapParams);
    clear(gapBody);
    const g = await gapsP;
    if (seq !== state.seq) return;
    if (g.e) {
      if (g.e instanceof AuthError) throw g.e;
      setStatus(gapStatus, g.e.message, true);
    } else {
      const all = Array.isArray(g.d.competitor_gaps) ? g.d.competitor_gaps : [];
      const rows = all.filter((r) => r.scope === `branch ${branch}`);
      $('gaps-subtitle').textContent = [rows[0] ? `versus ${rows[0].versus}` : '', 'solid bars: gap significant at 95%, pale: not',
        ...(g.d.notes || [])].filter(Boolean).join('; ');
      setStatus(gapStatus, rows.length ? '' : 'No competitor evaluations to compare with.');
      const scale = scaleOf(rows, 'gap_low', 'gap_high', 'gap', 0);
      const d = decimalsOf(rows.flatMap((r) => [r.own, r.competitors, r.gap, r.gap_low, r.gap_high]));
      for (const r of rows) {
        const sec = el('td', null, el('span', { text: r.section }));
        if (r.low_n) sec.append(' ', el('span', { className: 'badge badge-lown', text: 'low n', title: 'fewer than 3 evaluations on a side' }));
        gapBody.append(el('tr', { className: r.low_n ? 'low-n' : '', data: { section: r.section } },
          sec,
          el('td', { className: 'num' }, fmt(r.own, d), el('span', { className: 'sub-n', text: ` n ${fmtInt(r.own_n)}` })),
          el('td', { className: 'num' }, fmt(r.competitors, d), el('span', { className: 'sub-n', text: ` n ${fmtInt(r.competitors_n)}` })),
          el('td', { className: 'num' }, el('span', {
            className: 'chg ' + (gapSignificant(r) ? (r.gap >= 0 ? 'good' : 'bad') : 'flat'),
            title: gapSignificant(r) ? 'significant at 95%' : 'not significant at 95%',
          }, gapSignificant(r) ? el('span', { className: 'arrow', text: r.gap >= 0 ? '▲' : '▼' }) : null, fmtSigned(r.gap, d))),
          intervalCell(r.gap_low, r.gap_high, r.gap, scale, 0, d)));
      }
      // The chart leaves out sections without a gap (no evaluation on a
      // side); the table above lists them, marked low n.
      const charted = rows.filter((r) => isNum(r.gap));
      const canvas = $('gaps-chart');
      canvas.parentElement.hidden = !charted.length;
      if (charted.length && chartsAvailable()) {
        canvas.parentElement.style.height = `${Math.max(160, 60 + charted.length * 30)}px`;
        state.charts.push(gapChart(canvas, charted));
      }
    }

    // This branch's early warnings (the API lists them per region).
    const region = state.branchRegion[branch] || p.region;
    await renderAlerts(seq, { region, period: p.period }, branch, $('branch-alerts-list'),
      $('branch-alerts-status'), $('branch-alerts-csv'), $('branch-alerts-subtitle'));
  }

  /* -------------------------------------------------------------- wiring */

  function onPickerChange() {
    const route = readRoute();
    writeRoute(Object.assign({ branch: route.branch }, currentPickers()));
  }

  document.addEventListener('DOMContentLoaded', () => {
    if (chartsAvailable()) {
      window.Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
      window.Chart.defaults.color = '#5d6b7e';
    }
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    for (const id of ['pick-region', 'pick-period', 'pick-metric']) $(id).addEventListener('change', onPickerChange);
    window.addEventListener('hashchange', render);
    start().catch(onError);
  });
})();
