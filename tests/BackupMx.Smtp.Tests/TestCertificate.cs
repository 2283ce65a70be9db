using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace BackupMx.Smtp.Tests;

/// <summary>A self-signed certificate and key written as PEM files into a temporary folder.</summary>
internal sealed class TestCertificate : IDisposable
{
    private readonly string _folder;

    public TestCertificate(string hostName = "mx.backup.test")
    {
        _folder = Directory.CreateTempSubdirectory("backupmx-tls-").FullName;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + hostName, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));

        CertificatePath = Path.Combine(_folder, "cert.pem");
        KeyPath = Path.Combine(_folder, "key.pem");
        File.WriteAllText(CertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(KeyPath, key.ExportPkcs8PrivateKeyPem());
    }

    public string CertificatePath { get; }

    public string KeyPath { get; }

    public Dictionary<string, string?> Settings() => new()
    {
        ["BackupMx:Smtp:TlsCertificatePath"] = CertificatePath,
        ["BackupMx:Smtp:TlsKeyPath"] = KeyPath,
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
