/**
 * The operator console's page: replica cards with their switches, the gateway's live
 * counters, two charts (uPlot, served by the console itself) and a log of what happened.
 * Rendered by the browser from the console's server-sent events.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,"><title>Gangway demo · operator console</title>
<link rel="stylesheet" href="/uplot.css">
<style>
:root{--fg:#1b1f24;--muted:#4d5761;--bg:#fff;--card:#f4f6f8;--line:#d0d7de;--accent:#0b57d0;--ok:#166534;--bad:#b42318;--warn:#8a4b00;--plan:#6b21a8}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#8ab4ff;--ok:#86efac;--bad:#fca5a5;--warn:#fcd34d;--plan:#d8b4fe}}
*{box-sizing:border-box}html{font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}body{max-width:72rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.4rem;margin:0}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}.muted{color:var(--muted)}a{color:var(--accent)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(21rem,1fr));gap:.8rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:.8rem 1rem}
.card h3{margin:0 0 .3rem;font-size:1rem;display:flex;justify-content:space-between;align-items:center}
.state{font-size:.85rem;font-weight:600}.running{color:var(--ok)}.killed{color:var(--bad)}.frozen{color:var(--plan)}.starting{color:var(--warn)}
.buttons{display:flex;flex-wrap:wrap;gap:.35rem;margin-top:.5rem}
button{font:inherit;font-size:.9rem;color:var(--fg);background:var(--bg);border:1px solid var(--line);border-radius:.4rem;padding:.3rem .6rem;cursor:pointer}
button:hover:enabled{border-color:var(--accent)}button.danger{border-color:var(--bad)}button:disabled{opacity:.45;cursor:not-allowed}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.6rem}.stat b{display:block;font-size:1.35rem}
#plain{min-height:1.5em;font-style:italic}ol#log{padding-left:2.6rem;max-height:16rem;overflow:auto}figure{margin:.5rem 0}figcaption{color:var(--muted);font-size:.9rem}
</style></head>
<body>
<header><h1>Gangway demo · operator console</h1><p class="muted">Break the replicas; watch the listeners not notice. <a id="player" href="#">Player</a> · <a id="status" href="#">Status page</a></p></header>
<h2>Replicas</h2><div class="grid" id="replicas"></div>
<h2>Whole fleet</h2>
<div class="buttons"><button id="spike" data-plain="spike">Overload spike (1,000 req/s for 5 s)</button><button id="mon" data-plain="maintenance">Maintenance on</button><button id="moff">Maintenance off</button><button id="outage" class="danger" data-plain="outage">Total outage (kill every replica)</button><button id="restart-all">Restart every replica</button></div>
<p id="spike-status" aria-live="polite" hidden></p>
<p id="plain" class="muted" aria-live="polite"></p>
<h2>What the gateway is doing</h2>
<div class="stats" id="stats"></div>
<figure><figcaption>Answers per second from each replica (failed attempts dashed); time since this page opened</figcaption><div id="chart-replicas"></div></figure>
<figure><figcaption>Per second: errors listeners saw (broken answers and cut streams), retries, hedges, completed resumes, requests shed with Retry-After</figcaption><div id="chart-gateway"></div></figure>
<h2>What happened</h2><ol id="log"></ol>
<script src="/uplot.js"></script>
<script>
(function(){
var PLAIN=__PLAIN_PROXY__;
var gw=__PROXY_ORIGIN__;
// [action, label, style, can it act on a replica in this state?]
function running(r){return r.state==='running'}
var FAULTS=[['kill','Kill','danger',function(r){return r.state!=='killed'}],['restart','Restart','',function(){return true}],['freeze','Freeze (SIGSTOP)','danger',running],['thaw','Thaw','',function(r){return r.state==='frozen'}],
 ['fault/slow','Slow (new requests)','danger',running],['fault/garbage','Garbage bytes (new requests)','danger',running],['fault/reset','Reset new streams','danger',running],['fault/storm','503 storm (new requests)','danger',running],['fault/none','Heal','',function(r){return running(r)&&r.fault!=='none'}]];
 
var data={t:[],r:[[],[],[],[],[],[]],g:[[],[],[],[],[]]},charts={},t0=null;
// The x axis reads as time since the page opened: 0:00, 0:30, 1:00 …
function elapsed(v){v=Math.max(0,Math.round(v));return Math.floor(v/60)+':'+String(v%60).padStart(2,'0')}
var X={scales:{x:{time:false}},axes:[{values:function(u,vals){return vals.map(elapsed)}},{}]};
function post(path,plain){fetch(path,{method:'POST'}).then(function(r){return r.json()}).then(function(j){document.getElementById('plain').textContent=j.message+(j.plainProxy?' — '+j.plainProxy:'')})}
function el(t,a,x){var e=document.createElement(t);for(var k in a)e.setAttribute(k,a[k]);
 if(x!=null)e.textContent=x;return e}
var built=false;
function build(s){var box=document.getElementById('replicas');
 s.replicas.forEach(function(r,i){var c=el('section',{class:'card',id:'r'+i});
 var h=el('h3');h.appendChild(el('span',{},r.name+' · :'+r.port));
 h.appendChild(el('span',{class:'state'}));c.appendChild(h);
 c.appendChild(el('div',{class:'info muted'}));
 var b=el('div',{class:'buttons'});FAULTS.forEach(function(f){var key=f[0].replace('fault/','');
 var btn=el('button',{class:f[2],title:PLAIN[key]||'','data-action':f[0]},f[1]);
 btn.onclick=function(){post('/api/replicas/'+(i+1)+'/'+f[0])};
 b.appendChild(btn)});c.appendChild(b);box.appendChild(c)});
 
 var series=[{}].concat(s.replicas.map(function(r,i){return {label:r.name,stroke:['#2563eb','#16a34a','#d97706'][i],width:2}})).concat(s.replicas.map(function(r,i){return {label:r.name+' failed',stroke:['#2563eb','#16a34a','#d97706'][i],dash:[4,4],width:1}}));
 
 charts.r=new uPlot(Object.assign({width:document.body.clientWidth-40,height:170,series:series},X),[[]].concat(series.slice(1).map(function(){return []})),document.getElementById('chart-replicas'));
 
 var gs=[{},{label:'errors seen',stroke:'#dc2626',width:2},{label:'retries',stroke:'#2563eb',width:1},{label:'hedges',stroke:'#7c3aed',width:1},{label:'resumes',stroke:'#16a34a',width:2},{label:'shed',stroke:'#d97706',width:1}];
 
 charts.g=new uPlot(Object.assign({width:document.body.clientWidth-40,height:170,series:gs},X),
  [[],[],[],[],[],[]],document.getElementById('chart-gateway'));
 built=true}
function render(s){if(!built)build(s);
 s.replicas.forEach(function(r,i){var c=document.getElementById('r'+i);
 var st=c.querySelector('.state');st.textContent=r.state+(r.fault!=='none'?' · '+r.fault:'');
 st.className='state '+r.state;
  c.querySelector('.info').textContent=(r.inRotation?'in rotation':'out of rotation')+' · '+r.openStreams+(r.openStreams===1?' stream':' streams')+' open · '+r.okPerSecond+' answers/s · '+r.failedPerSecond+' failed/s';
 
  c.querySelectorAll('button').forEach(function(btn,k){btn.disabled=!FAULTS[k][3](r)})});
 var g=s.gateway,stats=[['Requests/s',g.requestsPerSecond],['Errors listeners saw/s',g.clientErrorsPerSecond],['Streams cut/s',g.cutPerSecond],['Retries/s',g.retriesPerSecond],['Hedges/s',g.hedgesPerSecond],['Resumes/s',g.resumesPerSecond],['Shed/s',g.shedPerSecond],['From cache/s',g.fromCachePerSecond],['Errors prevented by the cache/s',g.preventedPerSecond],['Concurrency limit',g.concurrencyLimit==null?'–':g.concurrencyLimit],['Queued',g.queued]];
 
 var sp=document.getElementById('spike-status');if(s.spike){sp.hidden=false;
 sp.textContent=(s.spike.running?'Spike running: ':'Last spike: ')+s.spike.sent+' sent · '+s.spike.ok+' served · '+
  s.spike.shed+' shed at once with 503 + Retry-After · '+(s.spike.other+s.spike.failed)+' failed'}
 var sb=document.getElementById('stats');sb.textContent='';
 stats.forEach(function(x){var d=el('div',{class:'stat card'});
 d.appendChild(el('b',{},String(x[1])));d.appendChild(el('span',{class:'muted'},x[0]));
 sb.appendChild(d)});
 if(t0===null)t0=s.at;data.t.push((s.at-t0)/1000);s.replicas.forEach(function(r,i){data.r[i].push(r.okPerSecond);
 data.r[i+3].push(r.failedPerSecond)});
 [g.clientErrorsPerSecond,g.retriesPerSecond,g.hedgesPerSecond,g.resumesPerSecond,g.shedPerSecond].forEach(function(v,i){data.g[i].push(v)});
 
 if(data.t.length>300){data.t.shift();data.r.forEach(function(a){a.shift()});data.g.forEach(function(a){a.shift()})}
 charts.r.setData([data.t].concat(data.r.slice(0,s.replicas.length*2)));charts.g.setData([data.t].concat(data.g));
 var log=document.getElementById('log');log.textContent='';s.events.forEach(function(e){log.appendChild(el('li',{},new Date(e.at).toLocaleTimeString()+' — '+e.text))});
 
 document.body.setAttribute('data-live','1')}
document.getElementById('spike').onclick=function(){post('/api/spike')};
document.getElementById('mon').onclick=function(){post('/api/maintenance/on')};
document.getElementById('moff').onclick=function(){post('/api/maintenance/off')};
document.getElementById('outage').onclick=function(){post('/api/outage')};
document.getElementById('restart-all').onclick=function(){post('/api/restart-all')};
document.getElementById('player').href=gw+'/';document.getElementById('status').href=gw+'/status';
new EventSource('/events').addEventListener('tick',function(ev){render(JSON.parse(ev.data))});
})();
</script></body></html>
`;
