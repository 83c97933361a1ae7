// Parsers of the benchmark tools' output, fed samples captured from the real tools on this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseIscsiPerf, parseQemuBench, parseIperf3Json, parseNegotiatedKeys, parseProcStatTicks,
  parseProcStatusKiB, parseReadCapacity16, parseCpuModel,
} from '../../../scripts/bench/parse.js';

// iscsi-perf 0.1 (libiscsi 1.19) against tgt: progress lines joined by '\r', final average, "finished.".
const PERF_RANDOM =
  'iscsi-perf version 0.1 - (c) 2014-2015 by Peter Lieven <pl@\xc4\xb8amp.de>\n\n' +
  'connected to iscsi://127.0.0.1:13260/iqn.2024-01.test:t1/1\n' +
  'capacity is 2097152 blocks or 1073741824 byte (1024 MB)\n' +
  'performing RANDOM READ with 32 parallel requests\n' +
  'FIXED transfer size of 8 blocks (4096 byte)\n' +
  'will run for 3 seconds.\n\n' +
  '\r00:00:02 - lba 858895, iops current 27643 (107 MB/s), iops average 27643 (107 MB/s), in_flight 32, busy 0        ' +
  '\r00:00:01 - lba 67454, iops current 20062 (78 MB/s), iops average 23853 (93 MB/s), in_flight 32, busy 0        ' +
  '\riops average 20878 (81 MB/s)                                                        \n\nfinished.\n';

const PERF_SEQ =
  'connected to iscsi://127.0.0.1:13260/iqn.2024-01.test:t1/1\n' +
  'capacity is 2097152 blocks or 1073741824 byte (1024 MB)\n' +
  'performing SEQUENTIAL READ with 32 parallel requests\n' +
  'FIXED transfer size of 256 blocks (131072 byte)\n' +
  'will run for 2 seconds.\n\n' +
  '\r00:00:01 - lba 423424, iops current 1620 (202 MB/s), iops average 1620 (202 MB/s), in_flight 32, busy 0        ' +
  '\riops average 1597 (199 MB/s)                                                        \n\nfinished.\n';

test('iscsi-perf: the final average, not a progress line, is the result', () => {
  assert.deepEqual(parseIscsiPerf(PERF_RANDOM), { iops: 20878, bytesPerIo: 4096, random: true });
  assert.deepEqual(parseIscsiPerf(PERF_SEQ), { iops: 1597, bytesPerIo: 131072, random: false });
});

test('iscsi-perf: a failed login or a run cut short is an error carrying the tool\'s words', () => {
  const loginFailed = 'iscsi-perf version 0.1\n\nLogin Failed. Failed to log in to target. Status: Target not found(515)\n';
  assert.throws(() => parseIscsiPerf(loginFailed), /did not start: .*Target not found/);
  const cut = PERF_RANDOM.slice(0, PERF_RANDOM.indexOf('\riops average 20878'));
  assert.throws(() => parseIscsiPerf(cut), /did not finish/);
});

// qemu-img 7.2 bench against tgt.
const QEMU_OK = 'Sending 20000 write requests, 4096 bytes each, 32 in parallel (starting at offset 0, step size 102453248)\nRun completed in 0.769 seconds.\n';

test('qemu-img bench: count, size, depth and duration give IOPS', () => {
  const q = parseQemuBench(QEMU_OK);
  assert.equal(q.count, 20000);
  assert.equal(q.bytesPerIo, 4096);
  assert.equal(q.depth, 32);
  assert.equal(q.write, true);
  assert.equal(q.seconds, 0.769);
  assert.ok(Math.abs(q.iops - 20000 / 0.769) < 1e-6);
});

test('qemu-img bench: an open failure or a zero duration is an error', () => {
  const fail = "qemu-img: Could not open 'iscsi://127.0.0.1:13260/iqn.2024-01.test:nope/1': iSCSI: Failed to connect to LUN : Failed to log in to target. Status: Target not found(515)\n";
  assert.throws(() => parseQemuBench(fail), /Target not found/);
  assert.throws(() => parseQemuBench('Sending 10 write requests, 4096 bytes each, 1 in parallel (starting at offset 0, step size 4096)\nRun completed in 0.000 seconds.\n'), /zero duration/);
});

test('iperf3 -J: receiver bits per second become bytes per second; errors are reported', () => {
  const json = JSON.stringify({ start: {}, end: { sum_received: { start: 0, end: 2.000826, seconds: 2.000826, bytes: 3431464960, bits_per_second: 13720193400.125748, sender: true } } });
  assert.ok(Math.abs(parseIperf3Json(json) - 13720193400.125748 / 8) < 1e-3);
  assert.throws(() => parseIperf3Json(JSON.stringify({ error: 'unable to connect to server: Connection refused' })), /Connection refused/);
  assert.throws(() => parseIperf3Json('iperf3: error'), /no JSON/);
});

test('libiscsi debug log: the digests the target answered', () => {
  const log = [
    'libiscsi:3 TCP_NODELAY set to 1 [iqn.2024-01.test:t1]',
    'libiscsi:6 TargetLoginReply: HeaderDigest=CRC32C [iqn.2024-01.test:t1]',
    'libiscsi:6 TargetLoginReply: DataDigest=None [iqn.2024-01.test:t1]',
    'libiscsi:6 TargetLoginReply: MaxBurstLength=262144 [iqn.2024-01.test:t1]',
  ].join('\n');
  assert.deepEqual(parseNegotiatedKeys(log), { HeaderDigest: 'CRC32C', DataDigest: 'None', MaxBurstLength: '262144' });
  assert.deepEqual(parseNegotiatedKeys('no login here'), {});
});

test('/proc/<pid>/stat: utime + stime, even when the command name has spaces and parentheses', () => {
  const stat = '11007 (head) R 10960 10960 5909 0 -1 4194304 100 0 0 0 7 5 0 0 20 0 1 0 1280229 2998272 404';
  assert.equal(parseProcStatTicks(stat), 12);
  assert.equal(parseProcStatTicks('42 (node (x) y) S 1 1 1 0 -1 0 0 0 0 0 300 45 0 0 20 0 11 0 5 6 7'), 345);
  assert.throws(() => parseProcStatTicks('garbage'), /malformed/);
});

test('/proc/<pid>/status: memory lines in KiB', () => {
  const kv = parseProcStatusKiB('Name:\tnode\nVmHWM:\t    2056 kB\nVmRSS:\t    1999 kB\nThreads:\t11\n');
  assert.equal(kv.VmHWM, 2056);
  assert.equal(kv.VmRSS, 1999);
  assert.equal(kv.Threads, undefined);
});

test('iscsi-readcapacity16 and /proc/cpuinfo', () => {
  const rc = 'RETURNED LOGICAL BLOCK ADDRESS:2097151\nLOGICAL BLOCK LENGTH IN BYTES:512\nP_TYPE:0 PROT_EN:0\nTotal size:1073741824\n';
  assert.deepEqual(parseReadCapacity16(rc), { blockSize: 512, bytes: 1073741824 });
  assert.throws(() => parseReadCapacity16('iscsi_connect failed. Failed to log in to target.'), /readcapacity16 failed/);
  assert.equal(parseCpuModel('processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: fpu\n'), 'AMD EPYC');
});
