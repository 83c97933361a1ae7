// libiscsi URL form for import sources: what parses, what is refused (and why), and the secret never shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IscsiUrlError, formatIscsiUrl, parseIscsiUrl, redactIscsiUrl } from '../../../agent/initiator/url.js';

test('parses host, default and explicit port, IPv6, CHAP user and secret', () => {
  assert.deepEqual(parseIscsiUrl('iscsi://san.example.net/iqn.2001-04.com.example:disk1/3'), { host: 'san.example.net', port: 3260, iqn: 'iqn.2001-04.com.example:disk1', lun: 3 });
  assert.deepEqual(parseIscsiUrl('iscsi://u%s3cr%t@[::1]:3261/iqn.2001-04.com.example:disk1/0'),
    { host: '::1', port: 3261, iqn: 'iqn.2001-04.com.example:disk1', lun: 0, user: 'u', secret: 's3cr%t' });
  assert.equal(formatIscsiUrl(parseIscsiUrl('iscsi://u%x@[::1]:3261/iqn.2001-04.com.example:d/0')), 'iscsi://u@[::1]:3261/iqn.2001-04.com.example:d/0');
});

test('refuses what is not a usable source, naming the part, without echoing the secret', () => {
  const bad: Array<[string, RegExp]> = [
    ['http://h/iqn.2001-04.com.example:d/0', /must start with iscsi:\/\//],
    ['iscsi://h/iqn.2001-04.com.example:d', /host\[:port\]\/target-name\/lun/],
    ['iscsi://h:0/iqn.2001-04.com.example:d/0', /port 0 is out of range/],
    ['iscsi://h/disk1/0', /"disk1" is not an iSCSI name/],
    ['iscsi://h/iqn.2001-04.com.example:d/20000', /LUN 20000 is out of range/],
    ['iscsi://%topsecret@h/iqn.2001-04.com.example:d/0', /user name before @ is empty/],
    ['iscsi://u%@h/iqn.2001-04.com.example:d/0', /secret after % is empty/],
  ];
  for (const [url, re] of bad) {
    assert.throws(() => parseIscsiUrl(url), (e: unknown) => e instanceof IscsiUrlError && re.test(e.message) && !e.message.includes('topsecret'), url);
  }
});

test('redaction drops only the secret', () => {
  assert.equal(redactIscsiUrl('iscsi://u%pw@h:1/iqn.2001-04.com.example:d/0'), 'iscsi://u@h:1/iqn.2001-04.com.example:d/0');
  assert.equal(redactIscsiUrl('iscsi://u@h:1/iqn.2001-04.com.example:d/0'), 'iscsi://u@h:1/iqn.2001-04.com.example:d/0');
  assert.equal(redactIscsiUrl('iscsi://h:1/iqn.2001-04.com.example:d/0'), 'iscsi://h:1/iqn.2001-04.com.example:d/0');
});
