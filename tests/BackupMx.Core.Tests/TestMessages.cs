using System.Text;
using BackupMx.Core.Intake;
using BackupMx.Core.Model;

namespace BackupMx.Core.Tests;

internal static class TestMessages
{
    public const string Body = "From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n";

    public static IncomingMessage Make(string sender = "alice@sender.test", string body = Body, params string[] recipients) => new()
    {
        Sender = sender,
        Parameters = new MailParameters { Body = "8BITMIME", Ret = "HDRS", EnvelopeId = "abc" },
        Recipients = (recipients.Length == 0 ? ["bob@example.test"] : recipients).Select(r => new IncomingRecipient(r)).ToList(),
        ClientAddress = "192.0.2.10",
        HeloName = "mail.sender.test",
        Content = MessageContent.FromBytes(Encoding.ASCII.GetBytes(body)),
    };

    public static string Text(byte[] bytes) => Encoding.ASCII.GetString(bytes);
}
