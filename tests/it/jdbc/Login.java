// pgjdbc logs in with SCRAM-SHA-256: the right password connects, a wrong one gets 28P01.
// Arguments: port, user, password. Prints one line for tests/it/security.rs.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;

public class Login {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/awscc";
        StringBuilder out = new StringBuilder();
        try (Connection c = DriverManager.getConnection(url, args[1], args[2]);
             ResultSet r = c.createStatement().executeQuery("SELECT 'ok'")) {
            r.next();
            out.append(args[1]).append("=").append(r.getString(1));
        }
        try (Connection c = DriverManager.getConnection(url, args[1], args[2] + "-wrong")) {
            out.append(" wrong=accepted");
        } catch (SQLException e) {
            out.append(" wrong=").append(e.getSQLState());
        }
        System.out.println(out);
    }
}
