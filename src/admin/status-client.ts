/**
 * The status page's look and its browser side. The script swaps in the sections the server
 * rendered for each step (./status-view.ts words everything), shows times on the reader's
 * clock, and draws the hour's charts with uPlot: clock times on the x-axis over at least 60
 * steps (five minutes at the default step, so the first seconds read as "10:04 10:05", not as
 * fractions of a second), values written the reader's way ("15 s", "5 %") on a y-axis as wide
 * as its widest label, and fewer ticks where the screen is narrow. On a phone the services
 * table becomes one card per service.
 */

export const STATUS_STYLE = `:root{--fg:#1b1f24;--muted:#4d5761;--bg:#fff;--card:#f4f6f8;--line:#d0d7de;--ok:#166534;--warn:#8a4b00;--bad:#b42318;--plan:#6b21a8;--busy:#7c4a03;--ok-bg:#dcfce7;--warn-bg:#fef3c7;--bad-bg:#fee4e2;--plan-bg:#f3e8ff;--busy-bg:#ffedd5;--c-rps:#2563eb;--c-failed:#dc2626;--c-shed:#d97706;--c-ttfb:#7c3aed}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#a8b3bf;--bg:#0d1117;--card:#161b22;--line:#30363d;--ok:#86efac;--warn:#fcd34d;--bad:#fca5a5;--plan:#d8b4fe;--busy:#fdba74;--ok-bg:#052e16;--warn-bg:#3a2a05;--bad-bg:#450a0a;--plan-bg:#2e1065;--busy-bg:#431407;--c-rps:#60a5fa;--c-failed:#f87171;--c-shed:#fbbf24;--c-ttfb:#a78bfa}}
*{box-sizing:border-box}html{font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0 auto;max-width:60rem;padding:1.5rem 1.25rem 3rem}h1{margin:0;font-size:1.6rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
.muted{color:var(--muted);margin:.2rem 0 1rem}.banner{padding:1rem 1.25rem;border-radius:.5rem;font-weight:600;font-size:1.15rem}
.s-operational,.s-healthy{color:var(--ok);background:var(--ok-bg)}.s-degraded{color:var(--warn);background:var(--warn-bg)}
.s-busy{color:var(--busy);background:var(--busy-bg)}
.s-partial_outage,.s-major_outage,.s-down{color:var(--bad);background:var(--bad-bg)}.s-maintenance{color:var(--plan);background:var(--plan-bg)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;font-size:.9rem;white-space:nowrap}
.reason,.detail{display:block;color:var(--muted);font-size:.9rem}.shed{color:var(--busy)}.counts{white-space:nowrap}
ul{padding-left:1.2rem}li{margin:.3rem 0}figure{margin:1rem 0}figcaption{color:var(--muted);font-size:.9rem;margin-bottom:.3rem}
.key{list-style:none;padding:0;margin:0 0 .3rem;display:flex;flex-wrap:wrap;gap:.2rem 1.2rem;font-size:.9rem}
.key li{margin:0}.key li::before{content:"";display:inline-block;width:1.2rem;height:.25rem;margin-right:.4rem;vertical-align:middle;border-radius:1px}
.k-failed::before{background:var(--c-failed)}.k-shed::before{background:var(--c-shed)}
.chart{width:100%;min-height:160px}
li.soon .reason{color:var(--warn);font-weight:600}li.expired .detail{color:var(--bad);font-weight:600}
@media (max-width:40rem){body{padding:1rem .9rem 2rem}
table.services thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
table.services,table.services tbody,table.services tr,table.services td{display:block;width:100%}
table.services tr{padding:.6rem 0;border-bottom:1px solid var(--line)}table.services td{border:0;padding:.15rem 0}
table.services td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.9rem}
table.services td:nth-child(2)::before{content:none}}`;

/** Runs in the browser: plain ES5 and the page's own uPlot, nothing else. */
export const STATUS_SCRIPT = `(function(){
var S=window.GANGWAY_STATUS,base=window.GANGWAY_STATUS_BASE,lang=document.documentElement.lang,charts={},hist=S.history||null;
function intl(ctor,opts){try{return new ctor(lang,opts)}catch(e){return new ctor('en',opts)}}
var num=intl(Intl.NumberFormat,{maximumFractionDigits:1}),pct=intl(Intl.NumberFormat,{style:'percent',maximumFractionDigits:1}),
 clock=intl(Intl.DateTimeFormat,{hour:'numeric',minute:'2-digit'}),clockS=intl(Intl.DateTimeFormat,{hour:'numeric',minute:'2-digit',second:'2-digit'}),
 stamp=intl(Intl.DateTimeFormat,{dateStyle:'medium',timeStyle:'short'}),stampS=intl(Intl.DateTimeFormat,{dateStyle:'medium',timeStyle:'medium'});
// SI symbols, as the server writes them (status-view.ts duration): "250 ms", "15 s"; a bare 0 at the origin.
function duration(v){return v===0?'0':v>=1000?num.format(v/1000)+'\\u00a0s':num.format(Math.round(v))+'\\u00a0ms'}
function localTimes(){document.querySelectorAll('time[datetime]:not([title])').forEach(function(t){var d=new Date(t.getAttribute('datetime'));t.title=t.textContent;t.textContent=(t.getAttribute('data-precision')==='seconds'?stampS:stamp).format(d)})}
// Only what changed is replaced: a banner rewritten every step would be announced every step.
var shown={};
function apply(sections){for(var id in sections){var e=document.getElementById(id);if(e&&shown[id]!==sections[id]){e.innerHTML=sections[id];shown[id]=sections[id]}}localTimes()}
// At least 60 steps wide (5 minutes at the default 5 s), so the first points sit on a clock axis.
var XINCRS=[1,2,5,10,15,30,60,120,300,600,900,1800,3600,7200];
function xRange(u,min,max){var end=max==null?Date.now()/1000:max;var start=min==null?end:min;return [Math.min(start,end-60*(hist.step_s||5)),end]}
function yRange(floor,cap){return function(u,min,max){var top=Math.max(floor,(max||0)*1.15);return [0,cap?Math.min(cap,top):top]}}
// uPlot draws labels on the canvas and gives the y-axis a fixed width unless asked: measure the widest.
function fit(u,values,i,cycle){var a=u.axes[i];if(cycle>1)return a._size;var w=0;if(values){u.ctx.font=a.font[0];values.forEach(function(v){if(v!=null)w=Math.max(w,u.ctx.measureText(v).width)})}return Math.ceil(w/devicePixelRatio+a.ticks.size+a.gap+6)}
function css(name){return getComputedStyle(document.documentElement).getPropertyValue(name).trim()}
function chart(id,cols,colors,yfmt,range){var box=document.getElementById(id),ink=getComputedStyle(document.body).color,line=css('--line');
 var series=[{}];cols.forEach(function(c,i){var col=css(colors[i]);series.push({stroke:col,width:2,fill:col+'22',dash:i>0?[6,4]:undefined})});
 var opts={width:box.clientWidth||600,height:160,legend:{show:false},cursor:{show:false},padding:[10,48,0,0],
  scales:{x:{time:true,range:xRange},y:{range:range}},
  axes:[{stroke:ink,space:90,incrs:XINCRS,grid:{stroke:line},ticks:{stroke:line},values:function(u,splits,i,space,incr){var f=incr<60?clockS:clock;return splits.map(function(t){return f.format(new Date(t*1000))})}},
   {stroke:ink,size:fit,grid:{stroke:line},ticks:{stroke:line},values:function(u,splits){return splits.map(yfmt)}}],
  series:series};
 charts[id]={cols:cols,plot:new uPlot(opts,columns(cols),box)}}
function columns(cols){return [hist.t].concat(cols.map(function(c){return hist[c]}))}
function draw(){if(!window.uPlot||!hist)return;
 if(!charts['chart-rps']){
  chart('chart-rps',['rps'],['--c-rps'],function(v){return num.format(v)},yRange(1));
  chart('chart-err',['error_pct','shed_pct'],['--c-failed','--c-shed'],function(v){return pct.format(v/100)},yRange(1,100));
  chart('chart-ttfb',['ttfb_p99_ms'],['--c-ttfb'],duration,yRange(10));return}
 for(var id in charts)charts[id].plot.setData(columns(charts[id].cols))}
function append(p){['t','rps','error_pct','shed_pct','ttfb_p99_ms'].forEach(function(k){hist[k]=hist[k].concat(p[k]);if(hist[k].length>720)hist[k]=hist[k].slice(-720)})}
localTimes();draw();
if(window.EventSource){var es=new EventSource(base+'/events?lang='+encodeURIComponent(lang));es.addEventListener('status',function(ev){var s=JSON.parse(ev.data);if(s.history)hist=s.history;else if(s.point&&hist)append(s.point);if(s.sections)apply(s.sections);draw();document.body.setAttribute('data-live','1')})}
window.addEventListener('resize',function(){for(var id in charts){var c=charts[id].plot;c.setSize({width:c.root.parentNode.clientWidth,height:160})}});
})();`;
