import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';

describe('SMTP capture', () => {
  let smtp: SmtpCapture;
  beforeAll(async () => {
    smtp = await startSmtpCapture();
  });
  afterAll(async () => {
    await smtp?.stop();
  });

  it('captures a message sent with nodemailer', async () => {
    const transport = nodemailer.createTransport(smtp.url);
    await transport.sendMail({
      from: 'jml@example.com',
      to: ['ada@example.com', 'bob@example.com'],
      subject: 'Approval needed: prod-admin',
      text: 'Please approve.',
    });
    transport.close();

    const msg = await smtp.waitFor((m) => m.to.includes('ada@example.com'), 5000);
    expect(msg.from).toBe('jml@example.com');
    expect(msg.to).toEqual(['ada@example.com', 'bob@example.com']);
    expect(msg.subject).toBe('Approval needed: prod-admin');
    expect(msg.raw).toContain('Please approve.');
  });

  it('waitFor times out when nothing matches', async () => {
    await expect(smtp.waitFor((m) => m.to.includes('nobody@example.com'), 50)).rejects.toThrow(/no matching email/);
  });
});
