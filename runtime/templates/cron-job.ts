// @schedule {{schedule}}
// @description {{task}}, on the schedule {{schedule}} (UTC); a request runs it at once
const ranAt = new Date().toISOString();
const runs = (shared['cron:{{task}}:runs'] ?? 0) + 1;
shared['cron:{{task}}:runs'] = runs;
shared['cron:{{task}}:last'] = ranAt;
console.log('[{{task}}] run', runs, 'at', ranAt);
return { ok: true, task: '{{task}}', runs, ranAt };
